package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) newResolveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "resolve",
		Short: "Resolve a Talos version against the compatibility matrix",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("resolve: being written")
		},
	}
}
