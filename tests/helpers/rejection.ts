import assert from "node:assert/strict";

/** What `promise` rejects with; fails the test when it resolves instead. */
export async function rejectionOf<T = Error>(promise: Promise<unknown>, expected = "expected the call to fail"): Promise<T> {
  return promise.then(
    () => assert.fail(expected),
    (error: unknown) => error as T,
  );
}
