/**
 * Differential test of our unit-file parser against systemd itself (issue 9, item 5 and observation 8): each case
 * is a drop-in of its own throw-away unit; after one `daemon-reload`, `systemctl --user show -p Environment` of every
 * unit must equal what our parser makes of the same bytes, or our parser must refuse the file naming file and line.
 * Run on systemd 252 (bookworm), 257 (trixie) and 262 (forky).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "sdparse";
import { labDown, labUp, userExec, type LabHost } from "../../lab/api";
import { parseSystemctlEnvironment } from "../../provider/core/facts";
import { environmentModel } from "../../provider/core/sources";
import type { HostFacts, UnitFileOnDisk } from "../../provider/core/types";
import { readFactsFixture } from "../helpers/facts-fixture";

const UNIT_DIR = "/home/dev/.config/systemd/user";

/** Each case: the drop-in's exact bytes. Names are generic (the parser is); DOCKERD_ROOTLESS_ names where refusal is expected. */
const CASES: Record<string, string> = {
  simple: "[Service]\nEnvironment=A=1\n",
  "two-words": "[Service]\nEnvironment=A=1 B=2\n",
  "double-quotes": '[Service]\nEnvironment="A=x y" B=z\n',
  "single-quotes": "[Service]\nEnvironment='A=x y'\n",
  "quote-mid-word": '[Service]\nEnvironment=A="x y"z B=p\'q r\'\n',
  "c-escapes": "[Service]\nEnvironment=A=\\x41\\101\\u00e9 B=a\\tb C=a\\sb\n",
  "escaped-quote": '[Service]\nEnvironment="A=say \\"hi\\"" B=back\\\\slash\n',
  "escape-in-single-quotes": "[Service]\nEnvironment='A=a\\nb'\n",
  continuation: "[Service]\nEnvironment=A=1 \\\n  B=2\n",
  "comment-inside-continuation": "[Service]\nEnvironment=A=1 \\\n# a comment\n; another\n  B=2\n",
  "blank-inside-continuation": "[Service]\nEnvironment=A=1 \\\n\nB=2\n",
  reset: "[Service]\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n",
  "later-wins": "[Service]\nEnvironment=A=1 B=1\nEnvironment=A=2\n",
  "other-sections": "[Unit]\nEnvironment=U=1\n[Install]\nEnvironment=I=1\n[Service]\nEnvironment=S=1\n[X-Mine]\nEnvironment=X=1\n",
  "before-any-section": "Environment=A=1\n[Service]\nEnvironment=B=2\n",
  crlf: "[Service]\r\nEnvironment=A=1\r\nEnvironment=\"B=x y\"\r\n",
  "error-after-valid-word": '[Service]\nEnvironment=A=pasta "BROKEN\n',
  "invalid-escape": "[Service]\nEnvironment=A=1 B=\\q C=3\n",
  "continuation-at-eof": "[Service]\nEnvironment=A=1 B=2\\",
  specifiers: "[Service]\nEnvironment=H=%h U=%u I=%U T=%t P=100%% Q=%%h\n",
  "unresolvable-specifier-ours": "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--x=%H OTHER=1\n",
  "invalid-names": "[Service]\nEnvironment=1A=x =y NOEQUALS OK=1 _U=2\n",
  "empty-value": "[Service]\nEnvironment=A= B=\"\"\n",
  "spaces-around-key": "[Service]\n  Environment  =   A=1   \n",
  "lowercase-key": "[Service]\nenvironment=A=1\nEnvironment=B=2\n",
  "semicolon-comment": "[Service]\n; Environment=A=1\n# Environment=C=1\nEnvironment=B=2\n",
  "unterminated-only": '[Service]\nEnvironment=A="x\n',
  "quoted-words": '[Service]\nEnvironment="A=1" "B=2 3" \'C=4 5\'\n',
  "tab-separated": "[Service]\nEnvironment=A=1\tB=2\n",
  "hash-mid-line": "[Service]\nEnvironment=A=1 #notacomment B=2\n",
  "escaped-backslash-at-end": "[Service]\nEnvironment=A=1\\\\\nEnvironment=B=2\n",
  bom: "\uFEFF[Service]\nEnvironment=A=1\n",
  "section-trailing-space": "[Service]  \nEnvironment=A=1\n",
  "ours-error-hides-variable": '[Service]\nEnvironment=A=1 "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=vpnkit\n',
  "octal-and-unicode": "[Service]\nEnvironment=A=\\303\\251 B=\\U0001F600\n",
  "nul-escape": "[Service]\nEnvironment=A=1 B=\\x00 C=3\n",
};

const facts = (host: LabHost): HostFacts => {
  const base = readFactsFixture(join(__dirname, "../../../tests/fixtures/plan/no-op/facts.json"));
  return { ...base, user: host.user, home: `/home/${host.user}`, uid: 1000, xdgRuntimeDir: "/run/user/1000", environmentFiles: [], managerEnvironment: {}, environmentD: [] };
};

describe("our Environment= parser agrees with systemd", { timeout: 600_000 }, () => {
  let hosts: LabHost[];

  before(async () => {
    await labDown();
    hosts = [
      ...(await labUp({ hosts: 1, profile: "bookworm", docker: false })),
      ...(await labUp({ hosts: 1, profile: "trixie", docker: false })),
      ...(await labUp({ hosts: 1, profile: "forky", docker: false })),
    ];
  });
  after(() => labDown());

  it(`${Object.keys(CASES).length} tricky drop-ins: systemd's Environment= equals our file level, or we refuse naming file and line`, async () => {
    assert.ok(Object.keys(CASES).length >= 25);
    for (const host of hosts) {
      const names = Object.keys(CASES);
      // One exec writes every unit and drop-in (bytes travel base64), reloads once, and prints every Environment=.
      const writes = names
        .map((name, index) => {
          const unit = `rdn-diff-${index}.service`;
          return `mkdir -p ${UNIT_DIR}/${unit}.d && printf '[Service]\\nType=oneshot\\nExecStart=/bin/true\\n' > ${UNIT_DIR}/${unit} && echo ${Buffer.from(CASES[name]).toString("base64")} | base64 -d > ${UNIT_DIR}/${unit}.d/case.conf`;
        })
        .join(" && ");
      const show = names.map((_, index) => `printf 'RDN ${index} %s\\n' "$(systemctl --user show -p Environment --value rdn-diff-${index}.service | base64 -w 0)"`).join("; ");
      const result = await userExec(host.name, `${writes} && systemctl --user daemon-reload && ${show}`);
      assert.equal(result.exitCode, 0, result.stderr);
      const shown = new Map(
        result.stdout
          .split("\n")
          .filter((line) => line.startsWith("RDN "))
          .map((line) => [Number(line.split(" ")[1]), Buffer.from(line.split(" ")[2] ?? "", "base64").toString("utf8").replace(/\n$/, "")]),
      );
      const disagreements: string[] = [];
      names.forEach((name, index) => {
        const unit = `rdn-diff-${index}.service`;
        const path = `${UNIT_DIR}/${unit}.d/case.conf`;
        const files: UnitFileOnDisk[] = [
          { kind: "fragment", path: `${UNIT_DIR}/${unit}`, content: "[Service]\nType=oneshot\nExecStart=/bin/true\n" },
          { kind: "dropin", path, content: CASES[name] },
        ];
        const model = environmentModel(facts(host), files);
        const ours = Object.fromEntries([...model.decisions].filter(([, decision]) => decision.kind === "unit-file" && decision.value !== undefined).map(([key, decision]) => [key, decision.value]));
        const systemd = parseSystemctlEnvironment(shown.get(index) ?? "");
        const refused = model.problems.some((problem) => problem.path === path && problem.line > 0);
        if (refused) return;
        try {
          assert.deepEqual(ours, systemd);
        } catch {
          disagreements.push(`${host.name} ${name}: systemd ${JSON.stringify(systemd)} ours ${JSON.stringify(ours)}`);
        }
      });
      assert.deepEqual(disagreements, []);
      // The refusals are the cases meant to be refused, and nothing else.
      const refusedCases = names.filter((name, index) => environmentModel(facts(host), [{ kind: "dropin", path: `${UNIT_DIR}/rdn-diff-${index}.service.d/case.conf`, content: CASES[name] }]).problems.length > 0);
      assert.deepEqual(refusedCases, ["unresolvable-specifier-ours", "ours-error-hides-variable"]);
    }
  });
});
