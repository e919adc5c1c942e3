// The Incidents page from native panels: counts by severity and status
// (stat), new incidents over time (time series), the incidents table with
// a drill-down per row to incidents/:incident, where the incident view
// (actions by role, evidence, playbook approval) is a SceneReactObject.
// Status and severity are page variables (var-status, var-severity).
import { CustomVariable, EmbeddedScene, PanelBuilders, SceneAppDrilldownView, SceneFlexItem, SceneFlexLayout, SceneReactObject, SceneVariableSet, VariableValueSelectors, VizPanel } from '@grafana/scenes';
import { IncidentView } from '../pages/Incidents';
import { locationService } from '@grafana/runtime';
import { ALL_VALUE, useMe, mcpQuery } from './common';
import { appLink, appUrl, detailPage, goPage, transformed } from './drilldown';
import { filterRows, pickFrames } from './frames';
import { blastQuery } from './blastSubject';

/** The URL path of an incident's page. */
export function incidentPath(id: string): string {
  return `incidents/${encodeURIComponent(id)}`;
}

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];
export const STATUSES = ['open', 'acknowledged', 'resolved', 'suppressed'];

const choice = (name: string, label: string, values: string[]) =>
  new CustomVariable({ name, label, query: values.join(','), includeAll: true, defaultToAll: true, allValue: ALL_VALUE });

/** A stat counting the incidents (rows) whose field is value. */
function countStat(title: string, field: string, value: string): VizPanel {
  return PanelBuilders.stat()
    .setTitle(title)
    .setData(transformed((f) => filterRows(f, field, [value])))
    .setOption('reduceOptions', { values: false, calcs: ['count'], fields: 'incident_id' })
    .setNoValue('0')
    .build();
}

/** The incidents table (of the ancestor's data); each id and title opens the incident's drill-down. */
export function incidentsTable(title = 'Incidents'): VizPanel {
  const open = appLink('Open incident', 'incidents/${__data.fields.incident_id:percentencode}');
  return PanelBuilders.table()
    .setTitle(title)
    .setOverrides((b) => {
      b.matchFieldsWithName('incident_id').overrideDisplayName('Incident').overrideLinks([open]);
      b.matchFieldsWithName('title').overrideDisplayName('Title').overrideLinks([open]);
      b.matchFieldsWithName('agent_id').overrideDisplayName('Agent').overrideLinks([appLink('Agent', 'agents/${__value.raw:percentencode}')]);
      b.matchFieldsWithName('rule_id').overrideDisplayName('Rule').overrideLinks([appLink('Rule', 'detections/${__value.raw:percentencode}')]);
    })
    .build();
}

/**
 * Links of the list's earlier form (?incident=x from other pages,
 * ?status=open, ?severity=high) move to the drill-down or the variables.
 */
export function legacyIncidentLink(search: Record<string, unknown>): string | undefined {
  const { incident, status, severity, ...rest } = search;
  if (typeof incident === 'string' && incident) {
    return appUrl(incidentPath(incident), rest);
  }
  if ((typeof status === 'string' && status) || (typeof severity === 'string' && severity)) {
    return appUrl('incidents', rest, { 'var-status': status as string | undefined, 'var-severity': severity as string | undefined });
  }
  return undefined;
}

export function incidentsScene(): EmbeddedScene {
  const list = mcpQuery([{ queryType: 'incidents', status: '$status', severity: '$severity', limit: 5000 }]);
  return new EmbeddedScene({
    $behaviors: [
      () => {
        const to = legacyIncidentLink(locationService.getSearchObject());
        if (to) {
          locationService.replace(to);
        }
      },
    ],
    $variables: new SceneVariableSet({ variables: [choice('status', 'Status', STATUSES), choice('severity', 'Severity', SEVERITIES)] }),
    // The incidents list feeds the stats (filtered per panel) and the table.
    $data: list,
    controls: [new VariableValueSelectors({})],
    body: new SceneFlexLayout({
      direction: 'column',
      children: [
        new SceneFlexLayout({
          height: 100,
          children: SEVERITIES.slice(0, 4).map((s) => new SceneFlexItem({ body: countStat(s[0].toUpperCase() + s.slice(1), 'severity', s) })),
        }),
        new SceneFlexLayout({
          height: 100,
          children: STATUSES.map((s) => new SceneFlexItem({ body: countStat(s[0].toUpperCase() + s.slice(1), 'status', s) })),
        }),
        new SceneFlexItem({
          height: 240,
          body: PanelBuilders.timeseries()
            .setTitle('New incidents by severity')
            .setData(mcpQuery([{ queryType: 'new_incidents', severity: '$severity' }]))
            .setUnit('short')
            .build(),
        }),
        new SceneFlexItem({ height: 420, body: incidentsTable() }),
      ],
    }),
  });
}

/** The incident view with the signed-in user's rights (/me). */
function IncidentObject({ id }: { id: string }) {
  const me = useMe();
  return <IncidentView id={id} nav={{ me, go: goPage }} />;
}

export const incidentDrilldown: SceneAppDrilldownView = {
  routePath: 'incidents/:incident',
  getPage: (match, parent) => {
    const id = match.params.incident ?? ''; // react-router decodes it
    return detailPage(parent, `Incident ${id}`, incidentPath(id), 'incidents/:incident', () =>
      new EmbeddedScene({
        body: new SceneFlexLayout({
          direction: 'column',
          children: [
        new SceneFlexItem({ height: 'auto', body: new SceneReactObject({ component: IncidentObject, props: { id } }) }),
        // Its blast radius over time: requests in the sessions its findings are in.
        new SceneFlexItem({
          height: 240,
          body: PanelBuilders.timeseries()
            .setTitle('Requests in its sessions (blast radius)')
            .setData(transformed((f) => pickFrames(f, 'blast_series'), mcpQuery([blastQuery({ incident: id })])))
            .setUnit('short')
            .build(),
        }),
          ],
        }),
      })
    );
  },
};

