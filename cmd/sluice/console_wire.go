package main

import (
	"github.com/sluicehq/sluice/internal/admin/console"
)

// webConsole is the live web console (internal/admin/console).
type webConsole = console.Console

// mountConsole builds the web console and mounts its pages and streams
// on the admin listener; run samples its stats.
func (a *app) mountConsole() error {
	c, err := console.New(console.Options{
		Logger: a.log.With("component", "console"), Broker: a.broker, Pipeline: a.pipeline,
		Rules: a.rules, Gatherer: a.reg,
	})
	if err != nil {
		return err
	}
	if err := a.reg.Register(a.pipeline.TapCollector()); err != nil {
		return err
	}
	c.Mount(a.admin)
	a.console = c
	return nil
}
