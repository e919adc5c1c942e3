// Browser tests: the built plugin (dist/module.js) in a Grafana-like host
// page, the real backend binary behind /api/plugins/<id>/resources/* via
// hashicorp/go-plugin (cmd/hostserver), real ClickHouse with the seed data
// set, Debian's Chromium driven by playwright-core (no browser download).
// Usage: node browser/e2e.mjs <hostserver binary>
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const artifacts = path.join(root, 'test-artifacts');
mkdirSync(artifacts, { recursive: true });
const hostBin = process.argv[2];
if (!hostBin) {
  console.error('usage: node browser/e2e.mjs <hostserver binary>');
  process.exit(2);
}
const tmp = mkdtempSync(path.join(tmpdir(), 'mcpwatch-e2e-'));
const summaryPath = path.join(tmp, 'summary.json');

function startHost() {
  return new Promise((resolve, reject) => {
    const p = spawn(hostBin, ['-dist', path.join(root, 'dist'), '-host', path.join(here, 'host-dist'), '-summary', summaryPath], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    const timer = setTimeout(() => reject(new Error('hostserver did not become ready in 90s')), 90000);
    p.stdout.on('data', (d) => {
      buf += d.toString();
      const m = buf.match(/READY (\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc: p, base: m[1] });
      }
    });
    p.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hostserver exited with ${code}`));
    });
  });
}

const fmt = (n) => n.toLocaleString('en-US');

const failures = [];
function check(cond, msg) {
  if (!cond) {
    failures.push(msg);
    console.error('FAIL: ' + msg);
  } else {
    console.log('ok: ' + msg);
  }
}

async function main() {
  const { proc, base } = await startHost();
  const sum = JSON.parse(readFileSync(summaryPath, 'utf8'));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const pageErrors = [];
  const newPage = async (role, login) => {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    await ctx.addCookies([
      { name: 'grafana_role', value: role, url: base },
      { name: 'grafana_login', value: login, url: base },
    ]);
    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${role}: ${e.message}`));
    page.setDefaultTimeout(20000);
    page.setDefaultNavigationTimeout(60000); // the host bundle is large and the machine shared
    return page;
  };
  const app = (q) => `${base}/a/mcpwatch-mcpwatch-app?${q}`;
  const appPath = (p) => `${base}/a/mcpwatch-mcpwatch-app/${p}`;
  // Native panels by title (Grafana's PanelChrome test id); the host's panel stand-ins mark their data.
  const panel = (page, title) => page.getByTestId(`data-testid Panel header ${title}`);
  const tableRows = (page, title, n) => panel(page, title).locator(`[data-testid="table-panel"][data-rows="${n}"]`).waitFor();
  // A stat's value; with want, once it shows that value (the stat may still be loading).
  const statValue = async (page, title, want) => {
    const el = panel(page, title).locator(want === undefined ? '[data-testid="stat-panel"]' : `[data-testid="stat-panel"][data-value="${want}"]`);
    await el.waitFor();
    return Number(await el.getAttribute('data-value'));
  };
  // The blast radius requests table: its title is "Requests (newest N)" or "Requests (newest N of M)".
  const blastCalls = (page) => page.locator('[data-testid^="data-testid Panel header Requests (newest "]');
  const shot = (page, name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  try {
    const viewer = await newPage('Viewer', 'vera');

    // Overview: a Scenes page of native panels on the mcpwatch data source
    // (/api/ds/query → the backend's QueryData), under Grafana's time and
    // refresh pickers and the tenant/agent/server/tool variables.
    await viewer.goto(app('page=overview'));
    await viewer.waitForURL(/\/a\/mcpwatch-mcpwatch-app\/overview\?/);
    const url0 = new URL(viewer.url());
    check(url0.searchParams.get('from') === 'now-6h' && url0.searchParams.get('to') === 'now', 'overview: time range in the URL (from/to)');
    check(['tenant', 'agent', 'server', 'tool'].every((v) => url0.searchParams.has(`var-${v}`)), 'overview: variables in the URL (var-tenant, var-agent, var-server, var-tool)');
    check((await statValue(viewer, 'Tool calls', sum.Calls)) === sum.Calls, `overview stat: ${sum.Calls} calls`);
    check((await statValue(viewer, 'Active agents', Object.keys(sum.CallsByAgent).length)) === Object.keys(sum.CallsByAgent).length, 'overview stat: active agents');
    check((await viewer.getByTestId('data-testid TimePicker Open Button').count()) === 1, "Grafana's time picker");
    check((await viewer.getByTestId('data-testid RefreshPicker run button').count()) === 1, "Grafana's refresh picker");
    await panel(viewer, 'Calls over time').locator('canvas').first().waitFor();
    check(true, 'calls over time drawn by uPlot (canvas)');
    await panel(viewer, 'Busiest tools').locator(`[data-testid="table-panel"][data-rows="${Object.keys(sum.CallsByTool).length}"]`).waitFor();
    check(true, 'busiest tools table has one row per tool');
    await panel(viewer, 'Agents → servers → tools').getByTestId('node-agent:agent-alpha').waitFor();
    check((await panel(viewer, 'Agents → servers → tools').getByTestId('node-tool:http/fetch').count()) === 1, 'node graph has agent and tool nodes');
    await panel(viewer, 'Open incidents').getByText('inc-exfil-1').waitFor();
    check(true, 'open incidents table lists inc-exfil-1');
    await shot(viewer, '01-overview');
    // A variable changes the URL and the data: the agent selector, then a shared link.
    await viewer.getByTestId('data-testid RefreshPicker run button').click();
    await statValue(viewer, 'Tool calls', sum.Calls);
    check(true, 'refresh keeps the numbers');
    const alpha = sum.CallsByAgent['agent-alpha'];
    await viewer.goto(app('page=overview&var-agent=agent-alpha'));
    check((await statValue(viewer, 'Tool calls', alpha)) === alpha, `var-agent=agent-alpha: ${alpha} calls`);
    check(new URL(viewer.url()).searchParams.get('var-agent') === 'agent-alpha', 'the variable stays in the URL');
    const shared = viewer.url();
    const other = await newPage('Viewer', 'vera');
    await other.goto(shared);
    check((await statValue(other, 'Tool calls', alpha)) === alpha, 'a shared URL reopens the same view');
    check((await other.getByTestId('plugin-page').innerText()).includes('agent-alpha'), 'the shared URL shows the agent in its selector');
    await other.context().close();
    // The time range: a range without data shows none; the picker brings it back.
    await viewer.goto(app('page=overview&from=now-30d&to=now-20d'));
    await panel(viewer, 'Tool calls').getByTestId('panel-no-data').or(panel(viewer, 'Tool calls').locator('[data-testid="stat-panel"][data-value="0"]')).first().waitFor();
    check(true, 'a range without calls shows no calls');
    await viewer.getByTestId('data-testid TimePicker Open Button').click();
    await viewer.getByText('Last 7 days').click();
    await viewer.waitForURL(/from=now-7d/);
    check((await statValue(viewer, 'Tool calls', sum.Calls)) === sum.Calls, 'the time picker changes the URL and the data');
    await shot(viewer, '01b-overview-time-picker');
    await viewer.goto(app('page=overview'));

    // Agents, Sessions and Tools: Scenes pages of native panels on the data
    // source, with drill-downs (agents/:agent, sessions/:session,
    // tools/:server/:tool) that keep the time range and variables in the URL.
    const statIs = (page, title, want) => panel(page, title).locator(`[data-testid="stat-panel"][data-value="${want}"]`).waitFor();
    const cellRow = (page, title, field, text) => panel(page, title).getByTestId('table-row').filter({ has: page.locator(`td[data-field="${field}"]`, { hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`) }) });

    // Agents list
    await viewer.getByTestId('tab-agents').click();
    await viewer.waitForURL(/\/a\/mcpwatch-mcpwatch-app\/agents\?/);
    await tableRows(viewer, 'Agents (busiest first)', Object.keys(sum.CallsByAgent).length);
    check(true, `agents table has ${Object.keys(sum.CallsByAgent).length} agents`);
    for (const [id, calls] of Object.entries(sum.CallsByAgent)) {
      const row = cellRow(viewer, 'Agents (busiest first)', 'agent_id', id);
      check((await row.locator('td[data-field="calls"]').innerText()).trim() === fmt(calls), `agent ${id} has ${calls} calls`);
    }
    const agentIds = await panel(viewer, 'Agents (busiest first)').locator('td[data-field="agent_id"]').allInnerTexts();
    check(agentIds.length > 0 && agentIds.every((t) => t.trim() !== ''), 'no agent row shows an empty agent id');
    // Content of each agent's calls: the seed's agents send full content, none, and partial content.
    await viewer.locator('[data-testid="agents-content"][data-content="loaded"]').waitFor();
    for (const [id, c] of Object.entries(sum.ContentByAgent)) {
      const have = c.WithArguments + c.WithResult + c.WithDefinitions;
      const want = c.Calls + c.ResultCalls + c.Lists;
      const full = c.WithArguments === c.Calls && c.WithResult === c.ResultCalls && c.WithDefinitions === c.Lists;
      const label = have === 0 ? 'none' : full ? 'full' : `partial (${Math.floor((have / want) * 100)}%)`;
      const cell = viewer.getByTestId(`agent-content-${id}`);
      check((await cell.innerText()).trim() === label, `agent ${id} content "${label}"`);
      const title = (await cell.getAttribute('title')) ?? '';
      check(title.includes(`Arguments: ${c.WithArguments} of ${c.Calls} tools/call calls`), `agent ${id} tooltip gives the arguments share`);
      check(full ? !title.includes('cannot fire') : title.includes('mcp-secret-in-arguments'), `agent ${id} tooltip ${full ? 'names no rule' : 'names the rules that cannot fire'}`);
    }
    await shot(viewer, '02-agents');

    // Drill-down from the agents table to agent-alpha.
    await cellRow(viewer, 'Agents (busiest first)', 'agent_id', 'agent-alpha').locator('td[data-field="agent_id"] a').click();
    await viewer.waitForURL(/\/a\/mcpwatch-mcpwatch-app\/agents\/agent-alpha\?/);
    const agentUrl = new URL(viewer.url());
    check(agentUrl.searchParams.get('from') === 'now-6h' && agentUrl.searchParams.has('var-tenant'), 'agent page URL keeps the time range and variables');
    const alphaCalls = sum.CallsByAgent['agent-alpha'];
    await statIs(viewer, 'Calls', alphaCalls);
    check(true, `agent page: ${alphaCalls} calls`);
    await panel(viewer, 'Calls over time').locator('canvas').first().waitFor();
    check(true, 'agent page: calls over time drawn (canvas)');
    await panel(viewer, 'Agent → server → tool').getByTestId('node-agent:agent-alpha').waitFor();
    check((await panel(viewer, 'Agent → server → tool').getByTestId('node-tool:http/fetch').count()) === 1, 'agent graph has http/fetch');
    check((await panel(viewer, 'Agent → server → tool').locator('[data-testid^="node-agent:"]').count()) === 1, 'agent graph is filtered to the agent');
    await panel(viewer, 'Incidents').getByText('Sensitive file read followed by an outbound call').first().waitFor();
    check(true, 'agent page lists its incident');
    await panel(viewer, 'Sessions').getByText(sum.ExfilSession).waitFor();
    check(true, 'agent page lists its sessions');
    await viewer.locator('[data-testid="agent-content"][data-state="loaded"]').waitFor();
    check((await viewer.getByTestId('agent-content-level').innerText()).trim() === 'full', 'agent page: content full');
    check((await viewer.getByTestId('agent-content-share').count()) === 3, 'agent page: three content shares');
    await viewer.getByTestId('agent-events').waitFor();
    check((await viewer.getByTestId('agent-events').getByTestId('event-row').count()) === Math.min(20, alphaCalls), 'agent page: its newest calls');
    await shot(viewer, '03-agent-detail');
    // The URL reopens the same view.
    const reopen = await newPage('Viewer', 'vera');
    await reopen.goto(agentUrl.toString());
    await statIs(reopen, 'Calls', alphaCalls);
    await panel(reopen, 'Agent → server → tool').getByTestId('node-agent:agent-alpha').waitFor();
    check(true, 'the agent page URL reopens the same view');
    // An agent whose sender captures content for some calls only.
    await reopen.goto(`${base}/a/mcpwatch-mcpwatch-app/agents/agent-charlie`);
    await reopen.locator('[data-testid="agent-content"][data-state="loaded"]').waitFor();
    check((await reopen.getByTestId('agent-content-level').innerText()).startsWith('partial ('), 'agent page: charlie partial');
    check((await reopen.getByTestId('agent-content-rules-arguments').innerText()).includes('mcp-shell-injection'), 'agent page: rules that cannot fire without arguments');
    await reopen.getByTestId('agent-content-section').screenshot({ path: path.join(artifacts, '03b-agent-content-partial.png') });
    // The agent variable narrows the list; links of the earlier form
    // (agents?agent=x, sessions?session=x,
    // tools?server=&tool=) open the drill-down pages.
    await reopen.goto(app('page=agents&var-agent=agent-alpha'));
    await tableRows(reopen, 'Agents (busiest first)', 1);
    check((await panel(reopen, 'Agents (busiest first)').locator('td[data-field="agent_id"]').innerText()).trim() === 'agent-alpha', 'var-agent narrows the agents table');
    await reopen.goto(app('page=agents&agent=agent-bravo&var-tenant=default'));
    await reopen.waitForURL(/\/agents\/agent-bravo\?/);
    await statIs(reopen, 'Calls', sum.CallsByAgent['agent-bravo']);
    check(new URL(reopen.url()).searchParams.get('var-tenant') === 'default', 'agents?agent=x opens the agent page, keeping the variables');
    await reopen.goto(app(`page=sessions&session=${sum.ExfilSession}&agent=agent-alpha`));
    await reopen.waitForURL(new RegExp(`/sessions/${sum.ExfilSession}\\?`));
    await tableRows(reopen, 'Calls in order', sum.Sessions[sum.ExfilSession]);
    check(true, 'sessions?session=x opens the session page');
    await reopen.goto(app('page=tools&server=filesystem&tool=read_file'));
    await reopen.waitForURL(/\/tools\/filesystem\/read_file\?/);
    await reopen.getByTestId('def-new').waitFor();
    check(true, 'tools?server=&tool= opens the tool page');
    await reopen.context().close();

    // Sessions list, drill-down to the session with redactions.
    await viewer.goto(app('page=sessions'));
    await tableRows(viewer, 'Sessions (newest first)', Object.keys(sum.Sessions).length);
    check(true, 'sessions list');
    for (const [key, calls] of Object.entries(sum.Sessions)) {
      const row = cellRow(viewer, 'Sessions (newest first)', 'session_key', key);
      check((await row.locator('td[data-field="calls"]').innerText()).trim() === fmt(calls), `session ${key} has ${calls} calls`);
    }
    await shot(viewer, '05-sessions');
    await cellRow(viewer, 'Sessions (newest first)', 'session_key', sum.ExfilSession).locator('td[data-field="session_key"] a').click();
    await viewer.waitForURL(new RegExp(`/sessions/${sum.ExfilSession}\\?`));
    const sessionUrl = viewer.url();
    const exfilCalls = sum.Sessions[sum.ExfilSession];
    await statIs(viewer, 'Calls', exfilCalls);
    await tableRows(viewer, 'Calls in order', exfilCalls);
    check(true, `session timeline: ${exfilCalls} calls in order`);
    const outcomes = await panel(viewer, 'Calls in order').locator('td[data-field="outcome"]').allInnerTexts();
    check(outcomes.length === exfilCalls && outcomes.every((o) => o.trim() !== ''), 'session timeline: an outcome per call');
    check((await panel(viewer, 'Calls in order').locator('td[data-field="arguments"]').count()) === 0, 'session timeline table leaves the content to the view below');
    await viewer.getByTestId('session-events').waitFor();
    check((await viewer.getByTestId('event-row').count()) === exfilCalls, `session shows ${exfilCalls} ordered calls`);
    const marks = await viewer.getByTestId('redaction').allInnerTexts();
    check(marks.some((m) => m.startsWith('[REDACTED:private_key:')), 'redaction markers highlighted');
    check((await viewer.getByTestId('session-events').innerText()).includes('https://attacker.example/upload'), 'arguments shown as stored');
    await shot(viewer, '04-session');
    const again = await newPage('Viewer', 'vera');
    await again.goto(sessionUrl);
    await tableRows(again, 'Calls in order', exfilCalls);
    check((await again.getByTestId('event-row').count()) === exfilCalls, 'the session URL reopens the same view');
    await again.context().close();
    // Blast radius: from the session (the Sessions page links by URL), then
    // from the leaked key's fingerprint typed into the lookup; the answer is
    // native panels on one blast_radius query, the subject in the URL.
    await viewer.getByTestId('session-blast').click();
    await tableRows(viewer, 'Sessions', 1);
    check(new URL(viewer.url()).searchParams.get('session') === sum.ExfilSession, 'blast radius URL carries the session');
    check((await statValue(viewer, 'Agents touched')) === 1, 'blast radius of the session: one agent');
    // Requests of every method (its tools/call and its tools/list); the exact counts are checked in Go (TestBlastRadius, TestQueryBlastRadius).
    const requests = await statValue(viewer, 'Requests');
    check(requests >= sum.Sessions[sum.ExfilSession], `blast radius of the session: ${requests} requests, at least its ${sum.Sessions[sum.ExfilSession]} tool calls`);
    check((await panel(viewer, 'Sessions').innerText()).includes(sum.ExfilSession), 'blast radius of the session lists it');
    await panel(viewer, 'Requests over time').getByTestId('timeseries-panel').waitFor();
    check(true, 'blast radius requests over time render as a time series');
    const fp = marks.find((m) => m.startsWith('[REDACTED:private_key:')).replace(/^\[REDACTED:private_key:([0-9a-f]+)\]$/, '$1');
    await viewer.goto(appPath('blast'));
    await viewer.getByTestId('blast-hint').waitFor();
    await viewer.getByTestId('data-testid radio-button-option fingerprint').click();
    await viewer.getByTestId('blast-input-fingerprint').fill(fp);
    await viewer.getByTestId('blast-run').click();
    await blastCalls(viewer).locator(`[data-testid="table-panel"][data-rows="${sum.ExfilEventIDs.length}"]`).waitFor();
    check(true, `blast radius of secret ${fp}: the read and the upload`);
    const blastUrl = viewer.url();
    check(new URL(blastUrl).searchParams.get('fingerprint') === fp, 'the lookup is in the URL');
    check((await panel(viewer, 'Agents').innerText()).includes('agent-alpha'), 'blast radius of the secret names agent-alpha');
    check((await blastCalls(viewer).innerText()).includes('https://attacker.example/upload'), 'blast radius lists the upload');
    check((await blastCalls(viewer).getAttribute('data-testid')).endsWith(`Requests (newest ${sum.ExfilEventIDs.length})`), 'blast radius requests title: newest N (all of them)');
    await shot(viewer, '04b-blast-radius-secret');
    await viewer.goto(blastUrl);
    await blastCalls(viewer).locator(`[data-testid="table-panel"][data-rows="${sum.ExfilEventIDs.length}"]`).waitFor();
    check(true, 'reopening the blast radius URL shows the same answer');
    await panel(viewer, 'Sessions').getByRole('link', { name: sum.ExfilSession }).click();
    await viewer.getByTestId('session-events').waitFor();
    const sessUrl = new URL(viewer.url());
    check(sessUrl.pathname.endsWith(`/sessions/${sum.ExfilSession}`) && sessUrl.searchParams.has('from'), 'a blast radius session drills down to the session page');

    // Incidents: native panels (stats by severity and status, new incidents
    // over time, the table); status is a page variable in the URL; a row's
    // link drills down to incidents/<id>, which reopens as the same view.
    await viewer.goto(appPath('incidents'));
    await tableRows(viewer, 'Incidents', Object.keys(sum.Incidents).length);
    check(true, `incidents table lists the ${Object.keys(sum.Incidents).length} incidents`);
    const openCount = Object.values(sum.Incidents).filter((s) => s === 'open').length;
    check((await statValue(viewer, 'Open')) === openCount, `open incidents stat: ${openCount}`);
    let byStatus = 0;
    for (const st of ['Open', 'Acknowledged', 'Resolved', 'Suppressed']) {
      byStatus += await statValue(viewer, st);
    }
    check(byStatus === Object.keys(sum.Incidents).length, `status stats add up to ${Object.keys(sum.Incidents).length} incidents`);
    await panel(viewer, 'New incidents by severity').getByTestId('timeseries-panel').waitFor();
    check(true, 'new incidents time series renders');
    await viewer.goto(appPath('incidents?var-status=open'));
    await tableRows(viewer, 'Incidents', openCount);
    check(true, `status variable shows ${openCount} open`);
    let bySeverity = 0;
    for (const sv of ['Critical', 'High', 'Medium', 'Low']) {
      bySeverity += await statValue(viewer, sv);
    }
    check(bySeverity === openCount && (await statValue(viewer, 'Resolved')) === 0, `with status open the stats count the ${openCount} open incidents only`);
    await shot(viewer, '06-incidents');
    await panel(viewer, 'Incidents').getByRole('link', { name: 'inc-exfil-1', exact: true }).click();
    await viewer.getByTestId('incident-title').waitFor();
    const incidentUrl = new URL(viewer.url());
    check(incidentUrl.pathname.endsWith('/incidents/inc-exfil-1') && incidentUrl.searchParams.has('from'), `drill-down URL carries the incident and the time range (${incidentUrl.pathname})`);
    await viewer.goto(incidentUrl.href);
    await viewer.getByTestId('incident-title').waitFor();
    check((await viewer.getByTestId('incident-title').innerText()).includes('Sensitive file read'), 'reopening the drill-down URL shows the incident');
    check(await viewer.getByTestId('btn-acknowledge').isDisabled(), 'viewer: acknowledge disabled');
    check(await viewer.getByTestId(`approve-${sum.ApprovalStep}`).isDisabled(), 'viewer: approve disabled');
    check((await viewer.getByTestId('incident-findings').innerText()).includes('attacker.example'), 'findings with evidence');
    check((await viewer.getByTestId('incident-events').locator('[data-testid="event-row"]').count()) === sum.ExfilEventIDs.length, 'linked events');
    await panel(viewer, 'Requests in its sessions (blast radius)').getByTestId('timeseries-panel').waitFor();
    check(true, "the incident's blast radius over time renders as a time series");
    await shot(viewer, '07-incident-viewer');
    // Links of the earlier form (?incident=) still open the incident.
    await viewer.goto(app('page=incidents&incident=inc-exfil-1'));
    await viewer.getByTestId('incident-title').waitFor();
    check(new URL(viewer.url()).pathname.endsWith('/incidents/inc-exfil-1'), 'an ?incident= link moves to the drill-down');
    // The backend refuses viewers even if the UI were bypassed.
    const forbidden = await viewer.evaluate(async () => (await fetch('/api/plugins/mcpwatch-mcpwatch-app/resources/incidents/inc-exfil-1/acknowledge', { method: 'POST', body: '{}' })).status);
    check(forbidden === 403, 'backend answers 403 to a viewer');

    // Detections: the rules table and findings per rule over time as native
    // panels; a rule's link drills down to detections/<rule> with its findings.
    await viewer.goto(appPath('detections'));
    await tableRows(viewer, 'Detection rules', Object.keys(sum.FindingsByRule).length);
    for (const [rule, hits] of Object.entries(sum.FindingsByRule)) {
      const row = panel(viewer, 'Detection rules').locator('tr', { has: viewer.getByRole('link', { name: rule, exact: true }) });
      check((await row.innerText()).split('\t').map((c) => c.trim()).includes(String(hits)), `rule ${rule} has ${hits} findings`);
    }
    await panel(viewer, 'Findings per rule').getByTestId('timeseries-panel').waitFor();
    check(true, 'findings per rule render as a time series');
    await shot(viewer, '08-detections');
    const [ddRule, ddHits] = Object.entries(sum.FindingsByRule).find(([, n]) => n > 0);
    await panel(viewer, 'Detection rules').getByRole('link', { name: ddRule, exact: true }).click();
    await tableRows(viewer, 'Findings', ddHits);
    const ruleUrl = new URL(viewer.url());
    check(ruleUrl.pathname.endsWith(`/detections/${ddRule}`) && ruleUrl.searchParams.has('from'), `rule drill-down URL carries the rule (${ruleUrl.pathname})`);
    await viewer.goto(ruleUrl.href);
    await tableRows(viewer, 'Findings', ddHits);
    check(true, `reopening the rule's URL lists its ${ddHits} findings`);
    await panel(viewer, 'Findings over time').getByTestId('timeseries-panel').waitFor();
    await shot(viewer, '08b-detection-rule');
    // Tools: the inventory, a drill-down to a changed tool, its definition
    // diff, and from a definition to its blast radius.
    await viewer.goto(app('page=tools'));
    await tableRows(viewer, 'Tool inventory', Object.keys(sum.ToolVersions).length);
    check(true, 'tool inventory');
    for (const [key, versions] of Object.entries(sum.ToolVersions)) {
      const [server, tool] = key.split('/');
      const row = cellRow(viewer, 'Tool inventory', 'tool_name', tool).filter({ has: viewer.locator('td[data-field="server_name"]', { hasText: server }) });
      check((await row.locator('td[data-field="versions"]').innerText()).trim() === String(versions), `${key} has ${versions} definitions`);
    }
    await cellRow(viewer, 'Tool inventory', 'tool_name', 'read_file').locator('td[data-field="tool_name"] a').click();
    await viewer.waitForURL(/\/tools\/filesystem\/read_file\?/);
    const toolUrl = viewer.url();
    await viewer.getByTestId('def-new').waitFor();
    check((await viewer.getByTestId('def-old').innerText()).includes('h-read-1'), 'old definition on the left');
    check((await viewer.getByTestId('def-new').innerText()).includes('<IMPORTANT>'), 'changed definition on the right');
    check((await viewer.getByTestId('def-diff').count()) === 1, 'the diff facts are shown');
    await tableRows(viewer, 'Definitions (oldest first)', sum.ToolVersions['filesystem/read_file']);
    check(true, 'definition history table has every version');
    await panel(viewer, `Calls of filesystem/read_file`).locator('canvas').first().waitFor();
    check(true, 'tool page: its calls over time');
    await shot(viewer, '09-tools');
    const reopened = await newPage('Viewer', 'vera');
    await reopened.goto(toolUrl);
    await reopened.getByTestId('def-new').waitFor();
    check((await reopened.getByTestId('def-old').innerText()).includes('h-read-1'), 'the tool URL reopens the same view');
    await reopened.context().close();
    // The newest definition's hash links to its blast radius.
    const hashes = panel(viewer, 'Definitions (oldest first)').locator('td[data-field="definition_hash"] a');
    const newest = (await hashes.last().innerText()).trim();
    await hashes.last().click();
    await blastCalls(viewer).getByTestId('table-panel').waitFor();
    const defBlastUrl = new URL(viewer.url());
    check(
      defBlastUrl.pathname.endsWith('/blast') && defBlastUrl.searchParams.get('server') === 'filesystem' && defBlastUrl.searchParams.get('tool') === 'read_file' && defBlastUrl.searchParams.get('definition_hash') === newest,
      `definition ${newest} links to its blast radius`
    );
    await viewer.goto(toolUrl);
    await viewer.getByTestId('tool-blast').click();
    await blastCalls(viewer).getByTestId('table-panel').waitFor();
    check(new URL(viewer.url()).searchParams.get('tool') === 'read_file', 'the tool page links to the blast radius of the tool');

    // Editor acknowledges and approves: end to end through the analyzer stand-in.
    const editor = await newPage('Editor', 'alice');
    await editor.goto(appPath('incidents/inc-exfil-1'));
    await editor.getByTestId('incident-title').waitFor();
    check((await editor.getByTestId('incident-status').innerText()).trim() === 'open', 'incident starts open');
    await editor.getByTestId('btn-acknowledge').click();
    await editor.getByTestId('action-done').waitFor();
    await editor.waitForFunction(() => document.querySelector('[data-testid="incident-status"]')?.textContent === 'acknowledged');
    check(true, 'acknowledged incident reads back as acknowledged');
    check((await editor.getByTestId('incident-detail').innerText()).includes('updated by alice'), 'change carries the Grafana login');
    await editor.getByTestId(`approve-${sum.ApprovalStep}`).click();
    await editor.waitForFunction(
      (step) => document.querySelector(`[data-testid="step-${step}"]`)?.textContent?.includes('approved'),
      sum.ApprovalStep
    );
    check(true, 'playbook step approved');
    await shot(editor, '10-incident-acknowledged');

    // Backtest on the Detections page: a viewer cannot run it; an editor
    // picks a rule, edits its YAML, runs it and sees the diff table (the
    // stand-in answers the seed's findings of the rule as "both").
    await viewer.goto(app('page=detections'));
    await viewer.getByTestId('backtest-panel').waitFor();
    check(await viewer.getByTestId('backtest-run').isDisabled(), 'viewer: backtest disabled');
    const [btRule, btHits] = Object.entries(sum.FindingsByRule)[0];
    await editor.goto(app('page=detections'));
    await editor.getByTestId('backtest-panel').waitFor();
    await editor.getByTestId('backtest-rule').selectOption(btRule);
    check((await editor.getByTestId('backtest-yaml').inputValue()).startsWith(`id: ${btRule}\n`), 'backtest: the picked rule\'s YAML is in the editor');
    await editor.getByTestId('backtest-yaml').fill((await editor.getByTestId('backtest-yaml').inputValue()) + 'dedup: 2h\n');
    await editor.getByTestId('backtest-since').fill('7d');
    await editor.getByTestId('backtest-run').click();
    await editor.getByTestId('backtest-diff').waitFor();
    check(
      (await editor.getByTestId('backtest-counts').innerText()).includes(`0 only new, 0 only deployed, ${btHits} both`),
      `backtest of ${btRule}: ${btHits} findings in both versions`
    );
    check((await editor.locator('[data-testid="backtest-row-both"]').count()) === btHits, 'backtest: one diff row per finding');
    await shot(editor, '13-backtest');

    // Config page: save and health check, including a wrong database.
    const admin = await newPage('Admin', 'admin');
    await admin.goto(`${base}/plugins/mcpwatch-mcpwatch-app?page=configuration`);
    await admin.getByTestId('cfg-save').click();
    await admin.getByTestId('cfg-result').waitFor();
    check((await admin.getByTestId('cfg-result').innerText()).includes(': OK'), 'config page health OK');
    const db = await admin.getByTestId('cfg-database').inputValue();
    await admin.getByTestId('cfg-database').fill('no_such_db');
    await admin.getByTestId('cfg-save').click();
    await admin.getByText('does not exist').waitFor();
    check(true, 'config page reports a missing database');
    await shot(admin, '11-config-error');
    await admin.getByTestId('cfg-database').fill(db);
    await admin.getByTestId('cfg-save').click();
    await admin.getByText('Connected').waitFor();
    await shot(admin, '12-config-ok');

    check(pageErrors.length === 0, `no page errors (${pageErrors.join('; ')})`);
  } catch (e) {
    failures.push(String(e && e.stack ? e.stack : e));
    console.error(e);
  } finally {
    await browser.close();
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    rmSync(tmp, { recursive: true, force: true });
  }
  if (failures.length) {
    console.error(`${failures.length} browser check(s) failed`);
    process.exit(1);
  }
  console.log('browser tests passed; screenshots in test-artifacts/');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
