export {
  instrumentClient,
  instrumentServer,
  capJSON,
  ATTR,
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
} from './capture';
export type { CaptureOptions } from './capture';
