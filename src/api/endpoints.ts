// Where the node agent listens by default: its own command line and every client (`scx-slo
// status`, the load-shedding sidecar) start from the same address.
export const DEFAULT_LISTEN = "127.0.0.1:9617";
export const DEFAULT_AGENT_URL = "http://127.0.0.1:9617";
