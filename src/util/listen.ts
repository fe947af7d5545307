// Listen addresses as the command lines take them: "HOST:PORT", "[v6]:PORT" or ":PORT".

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** The address; throws an Error naming the flag and giving an example. ":PORT" is all interfaces. */
export function parseListen(
  text: string,
  flag = "--listen",
  example = "127.0.0.1:9617",
): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new Error(`${flag} ${JSON.stringify(text)}: expected HOST:PORT, e.g. ${example}`);
  }
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** A URL a local client can reach the address at (all interfaces: loopback). */
export function listenUrl(addr: ListenAddress): string {
  const host =
    addr.host === "0.0.0.0" || addr.host === "::"
      ? "127.0.0.1"
      : addr.host.includes(":")
        ? `[${addr.host}]`
        : addr.host;
  return `http://${host}:${addr.port}`;
}
