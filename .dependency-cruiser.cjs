/**
 * Which top-level folder may import which (DESIGN.md §1, issue 10). The layers
 * form a DAG, so a cycle between folders cannot come back without breaking a
 * rule here; `no-circular` also catches cycles between files.
 *
 *   protocol ← db ← core ← durable, queues ← functions      (control plane)
 *   protocol ← bridge, flows                               (cluster side)
 *   protocol ← cli                                         (the redforge CLI: the API's client types only)
 *   dev, scripts, test, bench: tools; nothing shipped imports them.
 */
const shipped = "^(protocol|core|db|durable|queues|functions|bridge|flows|app|cli)/";
const ours = "^(protocol|core|db|durable|queues|functions|bridge|flows|app|cli|dev|scripts|test|bench)/";
const layer = (name, from, allowed, comment) => ({
  name,
  comment,
  severity: "error",
  from: { path: `^${from}/` },
  to: { path: ours, pathNot: `^(${[from, ...allowed].join("|")})/` },
});

module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", comment: "cycles make load order and ownership unclear", from: {}, to: { circular: true } },
    layer("protocol-is-a-leaf", "protocol", [], "the wire contract depends on nothing of ours: the Worker, bridge, console and CLI all import it"),
    layer("db-only-protocol", "db", ["protocol"], "schema and queries sit under the domain"),
    layer("core-below-http", "core", ["protocol", "db"], "domain code shared by routes, jobs and Durable Objects never reaches up into them"),
    layer("durable-uses-core", "durable", ["core", "protocol", "db"], "Durable Objects never import the HTTP layer or jobs"),
    layer("queues-use-core", "queues", ["core", "protocol", "db"], "jobs depend on the domain, never on functions/"),
    layer("functions-on-top", "functions", ["core", "protocol", "db", "durable", "queues"], "the Worker composes everything control-plane side"),
    layer("bridge-only-protocol", "bridge", ["protocol"], "the bridge ships on its own: only the wire contract is shared with the control plane"),
    layer("flows-only-protocol", "flows", ["protocol"], "the node package runs inside Node-RED"),
    layer("cli-only-protocol", "cli", ["protocol"], "the CLI talks to the API through the generated client, never through the control plane's code"),
    {
      name: "no-tools-in-shipped-code", severity: "error",
      comment: "dev stand-ins, scripts, tests and benches never ship",
      from: { path: shipped }, to: { path: "^(dev|scripts|test|bench)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|\\.redforge|app/dist)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.node.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"], extensions: [".ts", ".js", ".mjs", ".cjs", ".json"] },
    moduleSystems: ["es6", "cjs"],
  },
};
