import { DataQuery } from '@grafana/schema';
import { DataSourceJsonData } from '@grafana/data';

export const QUERY_TYPES = [
  { label: 'Calls over time', value: 'calls_over_time' },
  { label: 'Top agents', value: 'top_agents' },
  { label: 'Top tools', value: 'top_tools' },
  { label: 'Agent graph (node graph)', value: 'agent_graph' },
  { label: 'Incidents', value: 'incidents' },
  { label: 'Findings', value: 'findings' },
  { label: 'Tool changes', value: 'tool_changes' },
  { label: 'Denial rate per agent (alerting)', value: 'denial_rate' },
  { label: 'New incidents per severity (alerting)', value: 'new_incidents' },
  { label: 'Variable values (field)', value: 'values' },
  { label: 'Agents', value: 'agents' },
  { label: 'Sessions', value: 'sessions' },
  { label: 'Calls (of a session, or the newest)', value: 'calls' },
  { label: 'Tools', value: 'tools' },
  { label: "A tool's definition history", value: 'tool_definitions' },
];

/** The data source's settings (pkg/plugin Settings): its own ClickHouse and tenantAccess. */
export interface DsJsonData extends DataSourceJsonData {
  clickhouseAddress?: string;
  database?: string;
  username?: string;
  timeoutSeconds?: number;
  tenantAccess?: unknown;
}

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
  /** values: which dimension (tenant, agent, server, tool). */
  field?: string;
  /** calls: one session's calls in order. */
  session?: string;
}

export const TEXT_FIELDS = ['tenant', 'agent', 'server', 'tool', 'status', 'severity', 'rule'] as const;
