/**
 * The RootlessKit releases the lab tests build from the Go module proxy (`.ci/run` builds them before the tests):
 * 2.3.4 is what Docker 28.0.2–28.5.2 bundles; 3.3.0 was the newest 3.x on the proxy in December 2026
 * (`go list -m -versions github.com/rootless-containers/rootlesskit/v3`). Pinned, so CI never depends on the proxy's newest.
 */
export const ROOTLESSKIT_2 = "2.3.4";
export const ROOTLESSKIT_3 = "3.3.0";
export const TEST_ROOTLESSKIT_VERSIONS = [ROOTLESSKIT_2, ROOTLESSKIT_3];
