import { useEffect, useMemo, useState } from 'react';
import { css } from '@emotion/css';
import { AppRootProps, GrafanaTheme2 } from '@grafana/data';
import { locationService } from '@grafana/runtime';
import { RadioButtonGroup, Tab, TabsBar, useStyles2 } from '@grafana/ui';
import { PAGES, PageId, RANGES } from '../constants';
import { getResource } from '../api';
import { Me } from '../types';
import { OverviewPage } from '../pages/Overview';
import { AgentsPage } from '../pages/Agents';
import { SessionsPage } from '../pages/Sessions';
import { IncidentsPage } from '../pages/Incidents';
import { DetectionsPage } from '../pages/Detections';
import { ToolsPage } from '../pages/Tools';
import { BlastRadiusPage } from '../pages/BlastRadius';

export interface Nav {
  /** Current URL search parameters. */
  params: Record<string, string>;
  /** Moves to a page with parameters (kept in the URL). */
  go: (page: PageId, params?: Record<string, string | undefined>) => void;
  /** Time scope in epoch ms. */
  from: number;
  to: number;
  me?: Me;
}

function readParams(): Record<string, string> {
  const out: Record<string, string> = {};
  const o = locationService.getSearchObject();
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'string') {
      out[k] = v;
    }
  }
  return out;
}

export function App(_props: AppRootProps) {
  const s = useStyles2(getStyles);
  const [params, setParams] = useState<Record<string, string>>(readParams);
  const [me, setMe] = useState<Me>();
  useEffect(() => {
    const unlisten = locationService.getHistory().listen(() => setParams(readParams()));
    return unlisten;
  }, []);
  useEffect(() => {
    getResource<Me>('me')
      .then(setMe)
      .catch(() => setMe({ login: '', role: '', canAct: false, analyzer: false }));
  }, []);
  const page = (PAGES.find((p) => p.id === params.page)?.id ?? 'overview') as PageId;
  const range = RANGES.find((r) => r.value === params.range) ?? RANGES[1];
  // The scope is fixed when the range changes, so every panel of a page
  // asks for the same window.
  const scope = useMemo(() => {
    const to = Date.now();
    return { from: to - range.ms, to };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [range.value, params.refresh]);
  const nav: Nav = {
    params,
    from: scope.from,
    to: scope.to,
    me,
    go: (p, extra = {}) => {
      const next: Record<string, string | undefined> = { page: p, range: params.range };
      Object.assign(next, extra);
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(next)) {
        if (v) {
          q.set(k, v);
        }
      }
      locationService.push({ pathname: locationService.getLocation().pathname, search: '?' + q.toString() });
    },
  };
  const setRange = (v: string) => {
    const q = new URLSearchParams(locationService.getLocation().search);
    q.set('range', v);
    locationService.push({ pathname: locationService.getLocation().pathname, search: '?' + q.toString() });
  };
  return (
    <div className={s.root} data-testid="mcpwatch-app">
      <div className={s.header}>
        <h1 className={s.title}>mcpwatch</h1>
        <RadioButtonGroup options={RANGES.map((r) => ({ label: r.label, value: r.value }))} value={range.value} onChange={setRange} size="sm" />
      </div>
      <TabsBar>
        {PAGES.map((p) => (
          <Tab key={p.id} label={p.title} active={p.id === page} onChangeTab={() => nav.go(p.id)} data-testid={`tab-${p.id}`} />
        ))}
      </TabsBar>
      <div className={s.body}>
        {page === 'overview' && <OverviewPage nav={nav} />}
        {page === 'agents' && <AgentsPage nav={nav} />}
        {page === 'sessions' && <SessionsPage nav={nav} />}
        {page === 'incidents' && <IncidentsPage nav={nav} />}
        {page === 'detections' && <DetectionsPage nav={nav} />}
        {page === 'tools' && <ToolsPage nav={nav} />}
        {page === 'blast' && <BlastRadiusPage nav={nav} />}
      </div>
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  root: css`
    padding: ${theme.spacing(2)};
  `,
  header: css`
    display: flex;
    justify-content: space-between;
    align-items: center;
    margin-bottom: ${theme.spacing(1)};
  `,
  title: css`
    margin: 0;
  `,
  body: css`
    padding-top: ${theme.spacing(2)};
  `,
});
