// Free loopback ports for processes that must be told their port before they bind it.
import net from "node:net";

/**
 * n distinct TCP ports on 127.0.0.1 that the kernel handed out for port 0, all held at once while
 * asking (so no two coincide) and released before returning: a process that binds one soon after
 * gets it unless another takes it first.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}
