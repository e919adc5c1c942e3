// Grafana intercepts clicks on links to its own pages and moves with
// locationService instead of reloading (core's interceptLinkClicks); data
// links in panels rely on it. The host does the same.
import { locationService } from '@grafana/runtime';

document.addEventListener('click', (e) => {
  const a = (e.target as HTMLElement | null)?.closest?.('a');
  const href = a?.getAttribute('href');
  if (!a || !href || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || (a.target && a.target !== '_self')) {
    return;
  }
  const url = new URL(href, window.location.href);
  if (url.origin !== window.location.origin) {
    return;
  }
  e.preventDefault();
  locationService.push(url.pathname + url.search + url.hash);
});
