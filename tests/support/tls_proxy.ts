/**
 * A TLS front for the test Postgres, with certificates made on the spot by openssl: a CA and a
 * `localhost` certificate it signed. Clients reach it with `sslnegotiation=direct` (TLS from the
 * first byte, Postgres 17's way), the same TLS client options as after an SSLRequest; behind it
 * the bytes go to the server in plain.
 */
export interface TlsProxy {
  port: number;
  /** PEM of the CA that signed the proxy's certificate */
  ca: string;
  /** PEM of a CA that signed nothing here */
  otherCa: string;
  /** TLS connections accepted so far */
  connections: number;
  close(): Promise<void>;
}

export async function startTlsProxy(target: { hostname: string; port: number }): Promise<TlsProxy> {
  const dir = await Deno.makeTempDir();
  const openssl = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    if (out.code !== 0) {
      throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  for (const name of ["ca", "other-ca"]) {
    await openssl(
      "req",
      "-x509",
      ...ec,
      "-subj",
      `/CN=${name}`,
      "-days",
      "1",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
    );
  }
  await openssl(
    "req",
    ...ec,
    "-subj",
    "/CN=localhost",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
  );
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    "server.ext",
    "-out",
    "server.pem",
  );
  const read = (name: string) => Deno.readTextFile(`${dir}/${name}`);
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: await read("server.pem"),
    key: await read("server.key"),
    alpnProtocols: ["postgresql"],
  });
  const proxy: TlsProxy = {
    port: listener.addr.port,
    ca: await read("ca.pem"),
    otherCa: await read("other-ca.pem"),
    connections: 0,
    async close() {
      listener.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
  (async () => {
    for await (const client of listener) {
      try {
        await client.handshake();
      } catch {
        client.close(); // refused by the client: no connection
        continue;
      }
      proxy.connections++;
      const server = await Deno.connect(target);
      client.readable.pipeTo(server.writable).catch(() => {});
      server.readable.pipeTo(client.writable).catch(() => {});
    }
  })().catch(() => {});
  return proxy;
}
