export interface Totals {
  calls: number;
  errors: number;
  denials: number;
  error_rate: number;
  denial_rate: number;
  active_agents: number;
  servers: number;
  tools: number;
}
export interface Point {
  time: string;
  calls: number;
  errors: number;
  denials: number;
}
export interface ToolUse {
  server_name: string;
  tool_name: string;
  calls: number;
  errors: number;
  denials: number;
  agents: number;
}
export interface Overview {
  totals: Totals;
  series: Point[];
  open_incidents: Record<string, number>;
  top_tools: ToolUse[];
}
export interface AgentRow {
  agent_id: string;
  agent_name: string;
  user_id: string;
  client_name: string;
  calls: number;
  errors: number;
  denials: number;
  servers: number;
  tools: number;
  last_seen: string;
}
/** The agents' content (GET agent-content, loaded after the agents table): agent id → content. */
export interface AgentContents {
  content: Record<string, Content>;
  content_rules: ContentRules;
}
/** What content an agent's calls carry, counted per call (backend AgentContent). */
export interface Content {
  calls: number;
  with_arguments: number;
  result_calls: number;
  with_result: number;
  lists: number;
  with_definitions: number;
  level: 'full' | 'partial' | 'none' | 'no_calls';
  share: number;
  since: string;
  missing: ContentKind[];
  sources: string[];
}
export type ContentKind = 'arguments' | 'result' | 'tool_definitions';
/** The rules that read each kind of content (backend ContentRules). */
export type ContentRules = Record<ContentKind, string[]>;
export interface GraphNode {
  id: string;
  title: string;
  subTitle: string;
  mainStat: number;
  errors: number;
  kind: 'agent' | 'server' | 'tool';
}
export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  mainStat: number;
}
export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}
export interface EventRow {
  event_id: string;
  ts: string;
  ts_ns: number;
  duration_ns: number;
  agent_id: string;
  user_id: string;
  session_key: string;
  method: string;
  server_name: string;
  tool_name: string;
  arguments: string;
  result: string;
  outcome: string;
  error_type: string;
  tags: string[] | null;
}
export interface SessionRow {
  session_key: string;
  agent_id: string;
  user_id: string;
  calls: number;
  failures: number;
  redacted: number;
  first_seen: string;
  last_seen: string;
}
export interface Incident {
  incident_id: string;
  version: number;
  rule_id: string;
  rule_title: string;
  title: string;
  summary: string;
  status: string;
  severity: string;
  tags: string[] | null;
  finding_count: number;
  first_seen: string;
  last_seen: string;
  agent_id: string;
  user_id: string;
  session_key: string;
  server_name: string;
  tool_name: string;
  assignee: string;
  updated_by: string;
  note: string;
}
export interface AgentDetail {
  agent_id: string;
  agent: AgentRow | null;
  series: Point[];
  graph: Graph;
  incidents: Incident[];
  sessions: SessionRow[];
  events: EventRow[];
}
export interface Finding {
  finding_id: string;
  ts: string;
  rule_id: string;
  rule_title: string;
  severity: string;
  summary: string;
  agent_id: string;
  session_key: string;
  server_name: string;
  tool_name: string;
  event_ids: string[] | null;
  evidence: string;
  incident_id: string;
}
export interface Action {
  action_id: string;
  ts: string;
  kind: string;
  target: string;
  playbook: string;
  step: string;
  outcome: string;
  actor: string;
  detail: string;
}
export interface PlaybookStep {
  run_id: string;
  playbook: string;
  step: string;
  target: string;
  status: string;
  ts: string;
  actor: string;
}
export interface IncidentDetail {
  incident: Incident;
  findings: Finding[];
  events: EventRow[];
  actions: Action[];
  playbook_steps: PlaybookStep[];
  analyzer_error?: string;
}
export interface RuleHits {
  rule_id: string;
  rule_title: string;
  severity: string;
  hits: number;
  incidents: number;
  last_hit: string;
}
export interface RuleHitsPoint {
  time: string;
  rule_id: string;
  hits: number;
}
export interface ToolRow {
  tenant: string;
  server_name: string;
  tool_name: string;
  definition_hash: string;
  description: string;
  versions: number;
  first_seen: string;
  last_seen: string;
  last_changed: string;
  calls: number;
}
export interface DefinitionFacts {
  params: string[] | null;
  hosts: string[] | null;
  emails: string[] | null;
  paths: string[] | null;
  instructions: string[] | null;
  hints: Record<string, boolean> | null;
}
/** What a definition changed from the tool's previous one (backend tooldiff.go). */
export interface DefinitionDiff {
  previous_hash: string;
  previous_version: string;
  version_bump: boolean;
  params_added: string[];
  params_removed: string[];
  hosts_added: string[];
  emails_added: string[];
  paths_added: string[];
  instructions_added: string[];
  hints_changed: string[];
}
export interface ToolDefinition {
  server_name: string;
  tool_name: string;
  definition_hash: string;
  first_seen: string;
  last_seen: string;
  description: string;
  input_schema: string;
  annotations: string;
  server_version: string;
  /** null for definitions recorded before the analyzer kept facts */
  facts: DefinitionFacts | null;
  diff: DefinitionDiff | null;
}
export interface Me {
  login: string;
  role: string;
  canAct: boolean;
  analyzer: boolean;
}

/** GET /blast-radius: everything that touched one subject. */
export interface BlastRadius {
  subject: { Server: string; Tool: string; DefinitionHash: string; Fingerprint: string; Session: string; Incident: string };
  from: string;
  to: string;
  agents: Array<{ agent_id: string; calls: number; sessions: number; first_seen: string; last_seen: string }>;
  sessions: Array<{ session_key: string; agent_id: string; calls: number; first_seen: string; last_seen: string }>;
  calls: EventRow[];
  series: Array<{ t: string; calls: number; agents: number }>;
  truncated: boolean;
  /** How many more requests (events) touched the subject than `calls` lists. */
  more_calls: number;
}

/** A rule of the analyzer's loaded pack (GET /api/v1/rules). */
export interface PackRule {
  id: string;
  title: string;
  severity: string;
  kind: string;
  version: string;
  yaml?: string;
}
export interface BacktestSide {
  version: string;
  kind: string;
  findings: number;
  groups: number;
  top_groups: Array<{ tenant: string; group_key: string; findings: number }>;
}
export interface BacktestRow {
  class: 'only_new' | 'only_deployed' | 'both';
  tenant: string;
  group_key: string;
  event_id: string;
  ts: string;
  severity: string;
  summary: string;
}
/** The analyzer's backtest report (POST /api/v1/rules/backtest). */
export interface BacktestReport {
  rule_id: string;
  tenant?: string;
  since: string;
  until: string;
  events: number;
  truncated: boolean;
  stopped?: string;
  elapsed_ms: number;
  new: BacktestSide;
  deployed?: BacktestSide;
  diff: { only_new: number; only_deployed: number; both: number; rows: BacktestRow[] };
}
