// jsdom lacks these; React 19's scheduler wants MessageChannel and
// @grafana/ui touches matchMedia, ResizeObserver and TextEncoder.
const { TextEncoder, TextDecoder } = require('util');
const { MessageChannel } = require('worker_threads');

global.TextEncoder = global.TextEncoder || TextEncoder;
global.TextDecoder = global.TextDecoder || TextDecoder;
if (typeof global.MessageChannel === 'undefined') {
  global.MessageChannel = MessageChannel;
}
window.matchMedia =
  window.matchMedia ||
  ((query) => ({
    matches: false,
    media: query,
    onchange: null,
    addListener: () => {},
    removeListener: () => {},
    addEventListener: () => {},
    removeEventListener: () => {},
    dispatchEvent: () => false,
  }));
global.ResizeObserver =
  global.ResizeObserver ||
  class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
// @grafana/scenes' LazyLoader creates an IntersectionObserver at import.
global.IntersectionObserver =
  global.IntersectionObserver ||
  class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
if (typeof global.structuredClone === 'undefined') {
  global.structuredClone = (v) => JSON.parse(JSON.stringify(v));
}
