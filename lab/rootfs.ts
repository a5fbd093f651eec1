import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { runChecked } from "./exec";
import { CACHE_ROOT, HOST_UID, HOST_USER } from "./instance";
import { unmountUnder } from "./system";

export type Profile = "trixie" | "bookworm" | "forky";
export const PROFILES: readonly Profile[] = ["trixie", "bookworm", "forky"];

/** Where rootless Docker's scripts live in Debian's docker.io (every suite); not on PATH. */
export const DOCKER_CONTRIB = "/usr/share/docker.io/contrib";
/** The user unit, at the path `dockerd-rootless-setuptool.sh install` uses. */
export const USER_UNIT_PATH = `/home/${HOST_USER}/.config/systemd/user/docker.service`;
export const BUSYBOX_IMAGE_TAR = "/opt/lab/busybox.tar";
export const BUSYBOX_IMAGE = "local/busybox";

const SHARED_PACKAGES = [
  "systemd", "systemd-sysv", "dbus", "dbus-user-session", "openssh-server", "docker.io", "rootlesskit",
  "slirp4netns", "uidmap", "iptables", "iproute2", "iputils-ping", "busybox-static", "sudo", "curl",
  "procps", "util-linux", "libnss-myhostname",
];

// linux-sysctl-defaults stays out of trixie on purpose: the lab sets ping_group_range per host.
const PACKAGES: Record<Profile, string[]> = {
  // Debian 13 splits the docker CLI out of docker.io; pasta comes from passt.
  trixie: [...SHARED_PACKAGES, "docker-cli", "passt"],
  // Debian 12: docker.io 20.10 (CLI included), rootlesskit 1.1.0 (no pasta driver).
  bookworm: SHARED_PACKAGES,
  // Debian 14 (testing): docker.io 28.5.2 (the moby#47765 MTU fix, implicit by default with pasta), systemd 262.
  forky: [...SHARED_PACKAGES, "docker-cli", "passt"],
};

/** systemd ≥ 258 refuses to boot on cgroup v1 ("unsupported legacy cgroup hierarchy"); the others keep nspawn's default. */
export const UNIFIED_CGROUP: Record<Profile, boolean> = { trixie: false, bookworm: false, forky: true };

const MIRROR = "http://deb.debian.org/debian";
const DEBOOTSTRAP_SCRIPTS = "/usr/share/debootstrap/scripts";

/** debootstrap's arguments after the options: an older debootstrap has no script for a newer suite; sid's fits testing. */
function suiteArguments(suite: string, target: string): string[] {
  if (existsSync(join(DEBOOTSTRAP_SCRIPTS, suite))) return [suite, target];
  return [suite, target, MIRROR, join(DEBOOTSTRAP_SCRIPTS, "sid")];
}

/** Written like `dockerd-rootless-setuptool.sh install` writes it, without `--iptables=false`. */
const USER_UNIT = `[Unit]
Description=Docker Application Container Engine (Rootless)

[Service]
Environment=PATH=${DOCKER_CONTRIB}:/usr/sbin:/usr/bin:/sbin:/bin
ExecStart=${DOCKER_CONTRIB}/dockerd-rootless.sh
ExecReload=/bin/kill -s HUP $MAINPID
TimeoutSec=0
RestartSec=2
Restart=always
StartLimitBurst=3
StartLimitInterval=60s
LimitNOFILE=infinity
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
Delegate=yes
Type=notify
NotifyAccess=all
KillMode=mixed

[Install]
WantedBy=default.target
`;

/**
 * Everything every host of a profile shares, run in a chroot of the fresh tree. Per-host identity
 * (hostname, machine-id, sshd host key, authorized key, whether Docker is enabled) is written later
 * into each host's overlay.
 */
const CONFIGURE_SCRIPT = `set -eu
useradd --create-home --uid ${HOST_UID} --shell /bin/bash ${HOST_USER}
# Rootful Docker would compete with the rootless daemon; sshd gets one host key per host from the lab.
systemctl mask docker.service docker.socket containerd.service sshd-keygen.service
# Linger starts user@${HOST_UID} (and with it the rootless daemon) at boot without a login.
mkdir -p /var/lib/systemd/linger && touch /var/lib/systemd/linger/${HOST_USER}
# nspawn creates /dev/net/tun as 0600; slirp4netns and pasta open it as the user.
echo 'z /dev/net/tun 0666 root root -' > /etc/tmpfiles.d/lab-tun.conf
# A copied resolv.conf makes dockerd try DNS; the lab has none.
rm -f /etc/resolv.conf && : > /etc/resolv.conf
rm -f /etc/ssh/ssh_host_*
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\\nPasswordAuthentication no\\nUseDNS no\\n' > /etc/ssh/sshd_config.d/lab.conf
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id && ln -s /etc/machine-id /var/lib/dbus/machine-id
cd /home/${HOST_USER}
install -d -m 0700 -o ${HOST_USER} -g ${HOST_USER} .ssh
install -d -o ${HOST_USER} -g ${HOST_USER} .config .config/systemd .config/systemd/user .config/systemd/user/default.target.wants .local .local/share .local/share/docker
cat > ${USER_UNIT_PATH} <<'UNIT'
${USER_UNIT}UNIT
chown ${HOST_USER}:${HOST_USER} ${USER_UNIT_PATH}
# The image for containers: a static busybox tree, imported per host (there is no registry).
mkdir -p /opt/lab/busybox-image/bin
cp /bin/busybox /opt/lab/busybox-image/bin/busybox
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -s busybox "/opt/lab/busybox-image/bin/$applet"; done
tar -C /opt/lab/busybox-image -cf ${BUSYBOX_IMAGE_TAR} .
rm -rf /opt/lab/busybox-image
apt-get clean
`;

/** A Debian tree: the suite, the packages beyond minbase, and a script run in a chroot of the fresh tree. */
export interface TreeRecipe {
  /** Names the cached folder (with the recipe's hash): the suite, or the suite and what the tree is for. */
  name: string;
  suite: string;
  packages: readonly string[];
  configure: string;
}

function hostRecipe(profile: Profile): TreeRecipe {
  return { name: profile, suite: profile, packages: PACKAGES[profile], configure: CONFIGURE_SCRIPT };
}

function recipeHash(recipe: TreeRecipe): string {
  // A host profile's name is its suite: hashed as before, so the trees already cached stay valid.
  const key = recipe.name === recipe.suite ? { profile: recipe.name, packages: recipe.packages, configure: recipe.configure } : recipe;
  return createHash("sha256").update(JSON.stringify(key)).digest("hex").slice(0, 12);
}

function treePath(recipe: TreeRecipe): string {
  return join(CACHE_ROOT, `${recipe.name}-${recipeHash(recipe)}`);
}

export function rootfsPath(profile: Profile): string {
  return treePath(hostRecipe(profile));
}

/** Returns the cached tree of a host profile, building it first when its recipe changed. */
export function ensureRootfs(profile: Profile, log: (line: string) => void): Promise<string> {
  return ensureTree(hostRecipe(profile), log);
}

/**
 * Returns the cached tree of a recipe, building it first when it is not cached. The build goes to a temporary
 * directory that is renamed at the end, so an interrupted build is never used.
 */
export async function ensureTree(recipe: TreeRecipe, log: (line: string) => void): Promise<string> {
  const finalPath = treePath(recipe);
  if (existsSync(finalPath)) return finalPath;
  mkdirSync(CACHE_ROOT, { recursive: true });
  await removeAbandonedBuilds();
  const buildPath = join(CACHE_ROOT, `.build-${recipe.name}-${recipeHash(recipe)}-${process.pid}`);
  const started = Date.now();
  log(`rootfs ${recipe.name}: building ${finalPath} (debootstrap, ~1–3 min)`);
  try {
    await runChecked(
      ["debootstrap", "--variant=minbase", `--include=${recipe.packages.join(",")}`, ...suiteArguments(recipe.suite, buildPath)],
      recipe.name,
      "build rootfs (debootstrap)",
      { timeoutMs: 15 * 60_000 },
    );
    await runChecked(["chroot", buildPath, "/bin/sh", "-c", recipe.configure], recipe.name, "configure rootfs", { timeoutMs: 5 * 60_000 });
    renameSync(buildPath, finalPath);
  } catch (error) {
    await removeBuild(buildPath);
    // A parallel build of the same recipe won the rename: its tree is as good as ours.
    if (existsSync(finalPath)) return finalPath;
    throw error;
  }
  log(`rootfs ${recipe.name}: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return finalPath;
}

/** Temporary build directories whose builder process is gone (interrupted builds). */
async function removeAbandonedBuilds(): Promise<void> {
  for (const entry of readdirSync(CACHE_ROOT)) {
    const match = /^\.build-.*-(\d+)$/.exec(entry);
    if (match && !existsSync(`/proc/${match[1]}`)) await removeBuild(join(CACHE_ROOT, entry));
  }
}

/** An interrupted debootstrap can leave /proc or /sys mounted inside the tree: unmount before deleting. */
async function removeBuild(path: string): Promise<void> {
  await unmountUnder(path, "rootfs build");
  rmSync(path, { recursive: true, force: true });
}
