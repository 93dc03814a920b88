/**
 * A TCP proxy in front of Postgres that counts round trips: each time the
 * client speaks after the server has answered (or first), that is one. So
 * statements sent together (pipelined) count once, as they cost once.
 * It also counts the bytes Postgres sends back.
 * Written by hand: it is twenty lines, and the count is the point.
 */
export interface RoundTripProxy {
  port: number;
  roundTrips: number;
  /** bytes Postgres sent to the clients */
  bytesFromServer: number;
  close(): void;
}

export function startRoundTripProxy(target: { hostname: string; port: number }): RoundTripProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const proxy: RoundTripProxy = {
    port: (listener.addr as Deno.NetAddr).port,
    roundTrips: 0,
    bytesFromServer: 0,
    close: () => listener.close(),
  };
  (async () => {
    for await (const client of listener) {
      const server = await Deno.connect(target);
      let clientSpokeLast = false;
      const pipe = async (from: Deno.Conn, to: Deno.Conn, fromClient: boolean) => {
        const buffer = new Uint8Array(64 * 1024);
        try {
          for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
            if (fromClient && !clientSpokeLast) proxy.roundTrips++;
            clientSpokeLast = fromClient;
            if (!fromClient) proxy.bytesFromServer += n;
            let written = 0;
            while (written < n) written += await to.write(buffer.subarray(written, n));
          }
        } catch { /* either side went away */ }
        try {
          to.close();
        } catch { /* closed already */ }
      };
      pipe(client, server, true);
      pipe(server, client, false);
    }
  })().catch(() => {});
  return proxy;
}
