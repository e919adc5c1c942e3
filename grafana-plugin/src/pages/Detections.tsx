import { useState } from 'react';
import { Alert, Button } from '@grafana/ui';
import { errorMessage, getResource, postResource } from '../api';
import { BacktestReport, PackRule } from '../types';
import { fmtNum, fmtTime } from '../format';
import { Loading, Section, Severity, useLoad, useTableStyles } from '../components/common';

const classLabel: Record<string, string> = { only_new: 'only new', only_deployed: 'only deployed', both: 'both' };

/**
 * Backtest: pick a deployed rule, edit its YAML, run it over the stored
 * events through the analyzer (POST /api/v1/rules/backtest) and see its
 * findings diffed against the deployed version. Editors and admins only:
 * the backend refuses viewers too.
 */
function BacktestPanel({ rules, canAct }: { rules: PackRule[]; canAct: boolean }) {
  const s = useTableStyles();
  const [ruleId, setRuleId] = useState(rules[0]?.id ?? '');
  const [yaml, setYaml] = useState(rules[0]?.yaml ?? '');
  const [since, setSince] = useState('30d');
  const [tenant, setTenant] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string>();
  const [rep, setRep] = useState<BacktestReport>();
  const pick = (id: string) => {
    setRuleId(id);
    setYaml(rules.find((r) => r.id === id)?.yaml ?? '');
    setRep(undefined);
  };
  const run = async () => {
    setBusy(true);
    setErr(undefined);
    try {
      setRep(await postResource<BacktestReport>('rules/backtest', { rule_yaml: yaml, since, tenant }));
    } catch (e) {
      setErr(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section title="Backtest" testId="backtest-panel">
      <div style={{ display: 'flex', gap: 8, alignItems: 'center', marginBottom: 8 }}>
        <select value={ruleId} onChange={(e) => pick(e.target.value)} data-testid="backtest-rule" aria-label="Rule">
          {rules.map((r) => (
            <option key={r.id} value={r.id}>
              {r.id}
            </option>
          ))}
        </select>
        <span>since</span>
        <input
          value={since}
          onChange={(e) => setSince(e.target.value)}
          style={{ width: 80 }}
          aria-label="Since"
          data-testid="backtest-since"
        />
        <span>tenant</span>
        <input
          value={tenant}
          placeholder="all"
          onChange={(e) => setTenant(e.target.value)}
          style={{ width: 120 }}
          aria-label="Tenant"
          data-testid="backtest-tenant"
        />
        <Button disabled={!canAct || busy || yaml.trim() === ''} onClick={run} data-testid="backtest-run">
          {busy ? 'Running…' : 'Run backtest'}
        </Button>
        {!canAct && <span className={s.muted}>Editor or Admin role required</span>}
      </div>
      <textarea
        value={yaml}
        onChange={(e) => setYaml(e.target.value)}
        rows={14}
        spellCheck={false}
        style={{ width: '100%', fontFamily: 'monospace', fontSize: 12 }}
        data-testid="backtest-yaml"
        aria-label="Rule YAML"
      />
      {err && (
        <Alert title="Backtest failed" severity="error" data-testid="backtest-error">
          {err}
        </Alert>
      )}
      {rep && (
        <div data-testid="backtest-result">
          <p data-testid="backtest-summary">
            {fmtNum(rep.events)} events from {fmtTime(rep.since)} to {fmtTime(rep.until)} in {(rep.elapsed_ms / 1000).toFixed(1)} s
            {rep.truncated && ` (stopped early: ${rep.stopped})`} — new: {fmtNum(rep.new.findings)} findings in {fmtNum(rep.new.groups)} groups;
            deployed: {rep.deployed ? `${fmtNum(rep.deployed.findings)} findings in ${fmtNum(rep.deployed.groups)} groups` : 'no such rule'} —
            <b data-testid="backtest-counts">
              {' '}
              {fmtNum(rep.diff.only_new)} only new, {fmtNum(rep.diff.only_deployed)} only deployed, {fmtNum(rep.diff.both)} both
            </b>
          </p>
          <table className={s.table} data-testid="backtest-diff">
            <thead>
              <tr>
                <th>Diff</th>
                <th>Time</th>
                <th>Tenant</th>
                <th>Group</th>
                <th>Event</th>
                <th>Severity</th>
                <th>Summary</th>
              </tr>
            </thead>
            <tbody>
              {rep.diff.rows.map((r) => (
                <tr key={`${r.class}-${r.tenant}-${r.group_key}-${r.event_id}`} data-testid={`backtest-row-${r.class}`}>
                  <td>{classLabel[r.class]}</td>
                  <td>{fmtTime(r.ts)}</td>
                  <td>{r.tenant}</td>
                  <td>{r.group_key}</td>
                  <td>{r.event_id}</td>
                  <td>
                    <Severity value={r.severity} />
                  </td>
                  <td>{r.summary}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}

/**
 * The backtest form of the Detections scene: loads the analyzer's rule
 * pack (GET /detections answers it with the hits), then BacktestPanel.
 */
export function Backtest({ canAct }: { canAct: boolean }) {
  const s = useTableStyles();
  const [d, err, loading] = useLoad(() => {
    const to = Date.now();
    return getResource<{ rule_pack?: { rules: PackRule[] } }>('detections', { from: to - 3600e3, to });
  }, []);
  return (
    <Loading error={err} loading={loading}>
      {() =>
        d?.rule_pack && d.rule_pack.rules.length > 0 ? (
          <BacktestPanel rules={d.rule_pack.rules} canAct={canAct} />
        ) : (
          <p className={s.muted} data-testid="backtest-unavailable">
            Backtests need the analyzer API (configure its URL and token).
          </p>
        )
      }
    </Loading>
  );
}
