/**
 * The RootlessKit releases the lab tests build from the Go module proxy (`.ci/run` builds them before the tests):
 * 2.3.4 is what Docker 28.0.2–28.5.2 bundles; 3.3.0 was the newest 3.x on the proxy in December 2026
 * (`go list -m -versions github.com/rootless-containers/rootlesskit/v3`); 3.0.2 is what Docker 29.6.2–29.7.2 bundles,
 * for the Docker 29.5+ script. Pinned, so CI never depends on the proxy's newest.
 */
export const ROOTLESSKIT_2 = "2.3.4";
export const ROOTLESSKIT_3 = "3.3.0";
export const ROOTLESSKIT_3_0 = "3.0.2";
export const TEST_ROOTLESSKIT_VERSIONS = [ROOTLESSKIT_2, ROOTLESSKIT_3, ROOTLESSKIT_3_0];
/**
 * moby's github.com/moby/moby/v2 release (2026-09-15) whose contrib/dockerd-rootless.sh is Docker 29.5's script and
 * later, and whose dockerd runs in RootlessKit's detached namespace: `.ci/run` fetches the script and builds dockerd.
 */
export const MOBY = "v2.0.0-beta.24";
export const TEST_MOBY_VERSIONS = [MOBY];
