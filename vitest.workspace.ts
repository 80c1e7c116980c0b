/**
 * The test projects of the workspace: one per package or example with tests. `vitest.config.ts` runs this list.
 */
export default ["packages/*", "examples/*", "scripts"]
