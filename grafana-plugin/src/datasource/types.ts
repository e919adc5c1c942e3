import { DataQuery } from '@grafana/schema';

export const QUERY_TYPES = [
  { label: 'Calls over time', value: 'calls_over_time' },
  { label: 'Top agents', value: 'top_agents' },
  { label: 'Top tools', value: 'top_tools' },
  { label: 'Agent graph (node graph)', value: 'agent_graph' },
  { label: 'Incidents', value: 'incidents' },
  { label: 'Findings', value: 'findings' },
  { label: 'Tool changes', value: 'tool_changes' },
];

export interface McpQuery extends DataQuery {
  queryType?: string;
  tenant?: string;
  agent?: string;
  server?: string;
  tool?: string;
  status?: string;
  severity?: string;
  rule?: string;
  limit?: number;
}

export const TEXT_FIELDS = ['tenant', 'agent', 'server', 'tool', 'status', 'severity', 'rule'] as const;
