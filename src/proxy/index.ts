export { startProxy, type IndexProxy, type LocalFile, type ProxyRequestRecord, type ServedFile, type StartProxyOptions } from './server.js';
export {
  DEFAULT_INDEX_URL,
  loadPipConfigFiles,
  pipConfigPaths,
  pipConfiguredUpstreams,
  resolveUpstreams,
  type PipConfigFile,
  type UpstreamCliOptions,
  type Upstreams,
} from './upstream.js';
export { redactUrl } from './upstream-client.js';
