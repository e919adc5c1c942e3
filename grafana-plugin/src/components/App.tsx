import { useEffect, useMemo, useState } from 'react';
import { AppRootProps } from '@grafana/data';
import { locationService } from '@grafana/runtime';
import { PAGES, PageId } from '../constants';
import { OverviewPage } from '../pages/Overview';
import { AgentsPage } from '../pages/Agents';
import { SessionsPage } from '../pages/Sessions';
import { ToolsPage } from '../pages/Tools';
import { Nav, buildApp, pageUrl } from '../scenes/app';
import { incidentsPage } from '../scenes/incidents';
import { blastPage } from '../scenes/blast';
import { detectionsPage } from '../scenes/detections';
import { BASE_URL } from '../scenes/common';

export type { Nav };

/**
 * The app root: a Scenes app (src/scenes/app.tsx). Links of the earlier
 * form ?page=agents&agent=x are moved to /agents?agent=x.
 */
export function App(_props: AppRootProps) {
  const [legacyLink, setLegacyLink] = useState(legacyRedirect);
  useEffect(() => {
    if (legacyLink) {
      locationService.replace(legacyLink);
      setLegacyLink(undefined);
    }
  }, [legacyLink]);
  const app = useMemo(
    () =>
      buildApp({
        legacy: {
          overview: (nav) => <OverviewPage nav={nav} />,
          agents: (nav) => <AgentsPage nav={nav} />,
          sessions: (nav) => <SessionsPage nav={nav} />,
          incidents: () => null, // a scene (src/scenes/incidents.tsx)
          detections: () => null, // a scene (src/scenes/detections.tsx)
          tools: (nav) => <ToolsPage nav={nav} />,
          blast: () => null, // a scene (src/scenes/blast.tsx)
        },
        scenes: { incidents: incidentsPage, detections: detectionsPage, blast: blastPage },
      }),
    []
  );
  if (legacyLink) {
    return null;
  }
  return (
    <div data-testid="mcpwatch-app">
      <app.Component model={app} />
    </div>
  );
}

/** The new URL of an old-style ?page= link, or undefined. */
function legacyRedirect(): string | undefined {
  const loc = locationService.getLocation();
  const search = locationService.getSearchObject();
  const page = search.page;
  if (typeof page !== 'string' || loc.pathname.replace(/\/$/, '') !== BASE_URL || !PAGES.some((p) => p.id === page)) {
    return undefined;
  }
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(search)) {
    if (k !== 'page' && k !== 'range' && typeof v === 'string') {
      extra[k] = v;
    }
  }
  return pageUrl(page as PageId, search, extra);
}
