// The Detections page from native panels: the rules table (rules query)
// and findings per rule over time (rule_hits), each rule drilling down to
// detections/:rule (its series, its findings with links to their
// incidents and sessions); the backtest form is a SceneReactObject.
import { EmbeddedScene, PanelBuilders, SceneAppDrilldownView, SceneFlexItem, SceneFlexLayout, SceneReactObject, VizPanel } from '@grafana/scenes';
import { Backtest } from '../pages/Detections';
import { useMe, mcpQuery } from './common';
import { appLink, detailPage } from './drilldown';

const ruleLink = appLink('Findings of this rule', 'detections/${__data.fields.rule_id:percentencode}');

function rulesTable(rule = ''): VizPanel {
  return PanelBuilders.table()
    .setTitle('Detection rules')
    .setData(mcpQuery([{ queryType: 'rules', rule }]))
    .setOverrides((b) => {
      b.matchFieldsWithName('rule_id').overrideDisplayName('Rule').overrideLinks([ruleLink]);
      b.matchFieldsWithName('rule_title').overrideDisplayName('Title').overrideLinks([ruleLink]);
      b.matchFieldsWithName('last_hit').overrideDisplayName('Last finding');
    })
    .build();
}

function hitsOverTime(title: string, rule = ''): VizPanel {
  return PanelBuilders.timeseries().setTitle(title).setData(mcpQuery([{ queryType: 'rule_hits', rule }])).setUnit('short').build();
}

function BacktestObject() {
  const me = useMe();
  return me ? <Backtest canAct={me.canAct} /> : null;
}

export function detectionsScene(): EmbeddedScene {
  return new EmbeddedScene({
    body: new SceneFlexLayout({
      direction: 'column',
      children: [
        new SceneFlexItem({ height: 300, body: rulesTable() }),
        new SceneFlexItem({ height: 260, body: hitsOverTime('Findings per rule') }),
        new SceneFlexItem({ body: new SceneReactObject({ component: BacktestObject }) }),
      ],
    }),
  });
}

export const ruleDrilldown: SceneAppDrilldownView = {
  routePath: 'detections/:rule',
  getPage: (match, parent) => {
    const rule = match.params.rule ?? ''; // react-router decodes it
    const findings = PanelBuilders.table()
      .setTitle('Findings')
      .setData(mcpQuery([{ queryType: 'findings', rule, limit: 1000 }]))
      .setOverrides((b) => {
        b.matchFieldsWithName('incident_id').overrideDisplayName('Incident').overrideLinks([appLink('Incident', 'incidents/${__value.raw:percentencode}')]);
        b.matchFieldsWithName('session_key')
          .overrideDisplayName('Session')
          .overrideLinks([appLink('Session', 'sessions/${__value.raw:percentencode}')]);
      })
      .build();
    return detailPage(
      parent,
      `Rule ${rule}`,
      `detections/${encodeURIComponent(rule)}`,
      'detections/:rule',
      () =>
        new EmbeddedScene({
          body: new SceneFlexLayout({
            direction: 'column',
            children: [
              new SceneFlexItem({ height: 120, body: rulesTable(rule) }),
              new SceneFlexItem({ height: 240, body: hitsOverTime('Findings over time', rule) }),
              new SceneFlexItem({ height: 420, body: findings }),
            ],
          }),
        })
    );
  },
};

