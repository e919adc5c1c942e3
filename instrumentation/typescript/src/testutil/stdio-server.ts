// An uninstrumented McpServer on stdio, for the stdio transport test.
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { newServer } from './helpers';

const server = newServer();
server.connect(new StdioServerTransport()).catch((err) => {
  process.stderr.write(`stdio server: ${err}\n`);
  process.exit(1);
});
