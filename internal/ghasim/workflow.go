package ghasim

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"gopkg.in/yaml.v3"
)

// Workflow is the part of a workflow file the emulator runs.
type Workflow struct {
	Name string
	// Inputs are on.workflow_dispatch.inputs (also on.workflow_call.inputs).
	Inputs map[string]Input
	Env    map[string]string
	// Jobs in file order.
	Jobs []*Job
}

// Input is one workflow_dispatch/workflow_call input.
type Input struct {
	Type     string // string (default), boolean, choice, number, environment
	Default  string
	Required bool
	Options  []string
}

// Job is one job of a workflow.
type Job struct {
	ID      string
	If      string
	Needs   []string
	RunsOn  []string
	Env     map[string]string
	Outputs map[string]string
	Steps   []Step
	// Defaults.run.working-directory, relative to the workspace.
	WorkingDirectory string
}

// Step is one step of a job: either Run (a bash script) or Uses (an action).
type Step struct {
	ID               string
	Name             string
	If               string
	Uses             string
	With             map[string]string
	Env              map[string]string
	Run              string
	Shell            string
	WorkingDirectory string
	ContinueOnError  bool
}

// label names the step in logs and errors.
func (s Step) label(i int) string {
	switch {
	case s.Name != "":
		return s.Name
	case s.ID != "":
		return s.ID
	case s.Uses != "":
		return s.Uses
	}
	return fmt.Sprintf("step %d", i+1)
}

// ParseWorkflowFile reads and parses a workflow file.
func ParseWorkflowFile(path string) (*Workflow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading workflow: %w", err)
	}
	wf, err := ParseWorkflow(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return wf, nil
}

type rawWorkflow struct {
	Name string            `yaml:"name"`
	On   yaml.Node         `yaml:"on"`
	Env  map[string]string `yaml:"env"`
	Jobs yaml.Node         `yaml:"jobs"`
}

type rawJob struct {
	If       string            `yaml:"if"`
	Needs    yaml.Node         `yaml:"needs"`
	RunsOn   yaml.Node         `yaml:"runs-on"`
	Env      map[string]string `yaml:"env"`
	Outputs  map[string]string `yaml:"outputs"`
	Steps    []rawStep         `yaml:"steps"`
	Defaults struct {
		Run struct {
			WorkingDirectory string `yaml:"working-directory"`
		} `yaml:"run"`
	} `yaml:"defaults"`
}

type rawStep struct {
	ID               string            `yaml:"id"`
	Name             string            `yaml:"name"`
	If               string            `yaml:"if"`
	Uses             string            `yaml:"uses"`
	With             map[string]string `yaml:"with"`
	Env              map[string]string `yaml:"env"`
	Run              string            `yaml:"run"`
	Shell            string            `yaml:"shell"`
	WorkingDirectory string            `yaml:"working-directory"`
	ContinueOnError  bool              `yaml:"continue-on-error"`
}

// ParseWorkflow parses workflow YAML. It checks what the emulator relies on: every
// need names an earlier-declared or later job that exists, no cycles, and each step
// has exactly one of run/uses.
func ParseWorkflow(data []byte) (*Workflow, error) {
	var raw rawWorkflow
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parsing workflow: %w", err)
	}
	wf := &Workflow{Name: raw.Name, Env: raw.Env}
	inputs, err := parseInputs(&raw.On)
	if err != nil {
		return nil, err
	}
	wf.Inputs = inputs
	if raw.Jobs.Kind != yaml.MappingNode {
		return nil, errors.New("parsing workflow: jobs: a mapping is required")
	}
	for i := 0; i+1 < len(raw.Jobs.Content); i += 2 {
		id := raw.Jobs.Content[i].Value
		var rj rawJob
		if err := raw.Jobs.Content[i+1].Decode(&rj); err != nil {
			return nil, fmt.Errorf("parsing job %s: %w", id, err)
		}
		j, err := buildJob(id, &rj)
		if err != nil {
			return nil, err
		}
		wf.Jobs = append(wf.Jobs, j)
	}
	return wf, wf.checkNeeds()
}

func buildJob(id string, rj *rawJob) (*Job, error) {
	j := &Job{ID: id, If: rj.If, Env: rj.Env, Outputs: rj.Outputs,
		WorkingDirectory: rj.Defaults.Run.WorkingDirectory}
	var err error
	if j.Needs, err = stringOrList(&rj.Needs); err != nil {
		return nil, fmt.Errorf("job %s: needs: %w", id, err)
	}
	if j.RunsOn, err = stringOrList(&rj.RunsOn); err != nil {
		return nil, fmt.Errorf("job %s: runs-on: %w", id, err)
	}
	for i, rs := range rj.Steps {
		s := Step(rs)
		if (s.Run == "") == (s.Uses == "") {
			return nil, fmt.Errorf("job %s: %s: a step needs exactly one of run: and uses:", id, s.label(i))
		}
		j.Steps = append(j.Steps, s)
	}
	return j, nil
}

func stringOrList(n *yaml.Node) ([]string, error) {
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.ScalarNode:
		return []string{n.Value}, nil
	}
	var out []string
	err := n.Decode(&out)
	return out, err
}

func parseInputs(on *yaml.Node) (map[string]Input, error) {
	if on.Kind != yaml.MappingNode {
		return nil, nil // `on: push` or `on: [push, pull_request]`: no inputs
	}
	type rawInputs struct {
		Inputs map[string]struct {
			Type     string   `yaml:"type"`
			Default  string   `yaml:"default"`
			Required bool     `yaml:"required"`
			Options  []string `yaml:"options"`
		} `yaml:"inputs"`
	}
	events := map[string]rawInputs{}
	for i := 0; i+1 < len(on.Content); i += 2 {
		ev := on.Content[i].Value
		if ev != "workflow_dispatch" && ev != "workflow_call" {
			continue
		}
		var ri rawInputs
		if err := on.Content[i+1].Decode(&ri); err != nil {
			return nil, fmt.Errorf("parsing workflow: on.%s: %w", ev, err)
		}
		events[ev] = ri
	}
	out := map[string]Input{}
	for _, ev := range []string{"workflow_call", "workflow_dispatch"} {
		for name, in := range events[ev].Inputs {
			typ := in.Type
			if typ == "" {
				typ = "string"
			}
			out[name] = Input{Type: typ, Default: in.Default, Required: in.Required, Options: in.Options}
		}
	}
	return out, nil
}

func (wf *Workflow) checkNeeds() error {
	ids := map[string]*Job{}
	for _, j := range wf.Jobs {
		ids[j.ID] = j
	}
	for _, j := range wf.Jobs {
		for _, n := range j.Needs {
			if ids[n] == nil {
				return fmt.Errorf("job %s needs unknown job %q", j.ID, n)
			}
		}
	}
	_, err := wf.order()
	return err
}

// order returns the jobs in an order where every job comes after its needs
// (file order among independent jobs), or an error on a cycle.
func (wf *Workflow) order() ([]*Job, error) {
	var out []*Job
	done := map[string]bool{}
	for len(out) < len(wf.Jobs) {
		progressed := false
		for _, j := range wf.Jobs {
			if done[j.ID] || !allDone(j.Needs, done) {
				continue
			}
			done[j.ID], progressed = true, true
			out = append(out, j)
		}
		if !progressed {
			var left []string
			for _, j := range wf.Jobs {
				if !done[j.ID] {
					left = append(left, j.ID)
				}
			}
			return nil, fmt.Errorf("jobs %v need each other in a cycle", slices.Sorted(slices.Values(left)))
		}
	}
	return out, nil
}

func allDone(needs []string, done map[string]bool) bool {
	for _, n := range needs {
		if !done[n] {
			return false
		}
	}
	return true
}
