// A stat panel over one field of its data (its own runner, or the nearest
// $data above it).
import { PanelBuilders, SceneQueryRunner, VizPanel } from '@grafana/scenes';

/** A stat: calc (sum, count, max...) over the field named field. */
export function stat(title: string, field: string, calc: string, runner?: SceneQueryRunner): VizPanel {
  const b = PanelBuilders.stat().setTitle(title).setOption('reduceOptions', { values: false, calcs: [calc], fields: field });
  return (runner ? b.setData(runner) : b).build();
}
