export const APP_ID = 'mcpwatch-mcpwatch-app';
export const DS_ID = 'mcpwatch-mcpwatch-datasource';
export const RESOURCES = `/api/plugins/${APP_ID}/resources`;

export const PAGES = [
  { id: 'overview', title: 'Overview' },
  { id: 'agents', title: 'Agents' },
  { id: 'sessions', title: 'Sessions' },
  { id: 'incidents', title: 'Incidents' },
  { id: 'detections', title: 'Detections' },
  { id: 'tools', title: 'Tools' },
  { id: 'blast', title: 'Blast radius' },
] as const;

export type PageId = (typeof PAGES)[number]['id'];

export const RANGES = [
  { label: 'Last 1h', value: '1h', ms: 3600e3 },
  { label: 'Last 6h', value: '6h', ms: 6 * 3600e3 },
  { label: 'Last 24h', value: '24h', ms: 24 * 3600e3 },
  { label: 'Last 7d', value: '7d', ms: 7 * 24 * 3600e3 },
];
