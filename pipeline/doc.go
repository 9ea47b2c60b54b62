// Package pipeline orchestrates imgpipe's stages — resolve, schematic, verify, fetch,
// mirror, upload — over one lock: it plans which stages run, runs them in order,
// emits progress events, records what each did in a build report, and resumes an
// interrupted build by skipping the stages the report shows finished for the same
// lock. It knows every stage and owns none: the work is done by the stage packages.
package pipeline
