import { useEffect, useMemo, useState } from 'react';
import { AppRootProps } from '@grafana/data';
import { locationService } from '@grafana/runtime';
import { PAGES } from '../constants';
import { buildApp } from '../scenes/app';
import { appUrl } from '../scenes/drilldown';
import { BASE_URL } from '../scenes/common';

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
  const app = useMemo(() => buildApp(), []);
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
  return appUrl(page, search, extra);
}
