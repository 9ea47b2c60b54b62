// Package ghasim runs a GitHub Actions workflow file locally, for tests, the way a
// GitHub run would execute it: jobs in `needs` order, each on a fresh runner
// directory; a job's `if:` (with the implicit success() guard) decides whether it
// runs, and `outputs:` are evaluated after its steps. Each `run:` step is a bash
// script (`bash --noprofile --norc -eo pipefail`) with ${{ }} substituted first,
// and GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH, GITHUB_STEP_SUMMARY, RUNNER_TEMP and
// GITHUB_WORKSPACE set as on a runner (workspace <dir>/work/repo/repo, temp
// <dir>/work/_temp, the same paths for every job and emptied before it, so artifact
// paths root as they do on GitHub and Go's build cache hits across jobs).
//
// Expressions: literals, == != < > <= >= && || ! (GitHub's loose comparison:
// case-insensitive strings, other mixes compared as numbers), property access and
// [index], success() failure() always() cancelled() contains() startsWith()
// endsWith() format(); contexts inputs (typed: booleans are booleans), secrets,
// github (event_name, event.inputs as strings, ref, ref_name, run_id, token,
// repository, workspace), runner (temp, os), needs.<job>.{result,outputs},
// steps.<id>.{outcome,conclusion,outputs}, env, vars (Options.Vars).
//
// Built-in actions: actions/checkout (clones Options.Remote, a bare repository, at
// the run's branch or `ref`, origin pointing at it so `git push` works),
// actions/setup-go (no-op: the host's go is used), actions/upload-artifact and
// actions/download-artifact (v4 semantics: several paths are rooted at their least
// common ancestor, one plain file at its directory, a directory or glob at its
// search path; hidden files left out; a second upload of a name fails unless
// overwrite). Other actions come from Options.Actions or fail the run.
//
// The fake gh (built from ./fakegh into <dir>/bin, first on PATH) keeps state in
// <dir>/gh-state.json (LoadGHState, GHState.Save) shared by all runs with the same
// Dir, records every call, and needs GH_TOKEN or GITHUB_TOKEN like the real one in
// Actions. It implements, with gh's non-TTY plain output and no --json/--jq:
//
//	gh pr list [--head B] [--base B] [--state open|closed|merged|all] [--label L] [--search TEXT] [--limit N]
//	    -> one line per PR, newest first: NUMBER<TAB>TITLE<TAB>HEAD<TAB>STATE (OPEN|CLOSED|MERGED)
//	gh pr create --title T (--body B | --body-file F) --head H [--base B] [--label L]
//	    -> the PR URL; fails like gh when an open PR for head->base exists
//	gh pr edit <number|url|branch> [--title T] [--body B | --body-file F] [--base B] [--add-label L] [--remove-label L]
//	gh pr close <number|url|branch>
//	gh pr view <number|url|branch> -> "title:\t..", "state:\t..", "number:\t..", "head:\t..", "--", body
//	gh issue list [--state open|closed|all] [--label L] [--search TEXT] [--limit N]
//	    -> one line per issue, newest first: NUMBER<TAB>STATE<TAB>TITLE<TAB>LABELS (comma+space)
//	gh issue create --title T (--body B | --body-file F) [--label L] -> the issue URL
//	gh issue edit <number> [--title T] [--body B | --body-file F] [--add-label L] [--remove-label L]
//	gh issue comment <number> (--body B | --body-file F)
//	gh issue close <number> [--comment C] [--reason R]
//	gh issue reopen <number>
//	gh issue view <number> -> "title:\t..", "state:\t..", "number:\t..", "labels:\t..", "--", body
//
// --search is a plain-text match on title and body (words with a colon, like
// is:open, are ignored). Short flags (-t -b -F -H -B -s -l -L -S -c -r) work too;
// --body-file - reads stdin. Pipe `gh pr list` through `cut -f1` for the number:
// that works with the real gh as well.
//
// Typical use:
//
//	wf, _ := ghasim.ParseWorkflowFile(".github/workflows/check.yml")
//	res, err := ghasim.Run(ctx, wf, ghasim.Options{Dir: dir, Remote: bare, RunID: 1,
//		Env: map[string]string{"IMGPIPE_FACTORY_URL": fake.URL()}})
//	// res.Jobs["check"].Result == "success"; st, _ := ghasim.LoadGHState(dir)
package ghasim
