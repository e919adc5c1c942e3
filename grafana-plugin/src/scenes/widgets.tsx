// Small scene objects the Agents, Sessions and Tools pages share where a
// panel cannot express the view.
import { SceneComponentProps, SceneObject, SceneObjectBase, SceneObjectState, sceneGraph } from '@grafana/scenes';
import { locationService } from '@grafana/runtime';
import { LinkButton } from '@grafana/ui';
import { EventRow } from '../types';
import { EventsTable } from '../components/Events';
import { Section } from '../components/common';
import { appUrl, frameRows } from './drilldown';

interface BlastLinkState extends SceneObjectState {
  params: Record<string, string>;
  label: string;
  testId: string;
}

/** A button to the Blast radius page with its subject in the URL, keeping the time range and variables. */
export class BlastLink extends SceneObjectBase<BlastLinkState> {
  static Component = BlastLinkRenderer;
}

function BlastLinkRenderer({ model }: SceneComponentProps<BlastLink>) {
  const { params, label, testId } = model.useState();
  // Re-rendered when the time range changes, so the link carries the new one.
  sceneGraph.getTimeRange(model).useState();
  return (
    <LinkButton variant="secondary" size="sm" icon="share-alt" href={appUrl('blast', locationService.getSearchObject(), params)} data-testid={testId}>
      {label}
    </LinkButton>
  );
}


interface CallsViewState extends SceneObjectState {
  title: string;
  testId: string;
  showAgent?: boolean;
}

/**
 * The calls of a "calls" query (the scene's $data) with arguments and
 * results as stored, redaction markers highlighted: the content view a
 * table cell cannot give.
 */
export class CallsView extends SceneObjectBase<CallsViewState> {
  static Component = CallsViewRenderer;
}

function CallsViewRenderer({ model }: SceneComponentProps<CallsView>) {
  const { title, testId, showAgent } = model.useState();
  const { data } = sceneGraph.getData(model).useState();
  const events = frameRows<Omit<EventRow, 'tags'> & { tags: string }>(data?.series[0]).map(
    (e): EventRow => ({ ...e, tags: e.tags ? e.tags.split(', ') : [] })
  );
  return (
    <Section title={title}>
      {data?.state === 'Done' ? (
        <EventsTable events={events} testId={testId} showAgent={showAgent} />
      ) : (
        <p>{data?.state === 'Error' ? `Cannot load the calls: ${data.errors?.[0]?.message ?? ''}` : 'Loading…'}</p>
      )}
    </Section>
  );
}

/**
 * Moves a list page's URL that names one item in a parameter (earlier links
 * and bookmarks: agents?agent=x) to that
 * item's drill-down page when the scene activates, keeping the time range
 * and variables. Returns the scene.
 */
export function withParamRedirect<T extends SceneObject>(scene: T, target: (search: Record<string, unknown>) => string | undefined): T {
  scene.addActivationHandler(() => {
    const search = locationService.getSearchObject();
    const path = target(search);
    if (path) {
      locationService.replace(appUrl(path, search));
    }
  });
  return scene;
}

/** A search parameter's value when it is a non-empty string. */
export function param(search: Record<string, unknown>, key: string): string | undefined {
  const v = search[key];
  return typeof v === 'string' && v ? v : undefined;
}
