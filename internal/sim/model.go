package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// State is a machine's operating state as published in telemetry.
type State string

// The states a machine reports.
const (
	StateRunning State = "running"
	StateIdle    State = "idle"
	StateFault   State = "fault"
)

const (
	ambientC       = 22.0 // workshop temperature a stopped machine cools to
	vibrationLimit = 11.0 // mm/s: ISO 10816 "unacceptable" for medium machines
	minSetpoint    = 0.0
	maxSetpoint    = 400.0
)

// Sample is one telemetry message.
type Sample struct {
	// TS is the sample time in Unix milliseconds.
	TS int64 `json:"ts"`
	// Temp is the spindle housing temperature in °C.
	Temp float64 `json:"temp"`
	// Vibration is the RMS vibration velocity in mm/s.
	Vibration float64 `json:"vibration"`
	// SpindleRPM is the spindle speed.
	SpindleRPM float64 `json:"spindle_rpm"`
	// State is running, idle or fault.
	State State `json:"state"`
	// Setpoint is the temperature the machine regulates to while running.
	Setpoint float64 `json:"setpoint"`
}

// Alarm is published when a fault starts (Active) and when it clears.
type Alarm struct {
	// TS is the alarm time in Unix milliseconds.
	TS int64 `json:"ts"`
	// Active is true when the fault starts, false when it clears.
	Active bool `json:"active"`
	// Code names the fault.
	Code string `json:"code"`
	// Severity is "critical" while active, "info" once cleared.
	Severity string `json:"severity"`
	// Message is for people.
	Message string `json:"message"`
	// Vibration is the vibration at the time of the alarm, in mm/s.
	Vibration float64 `json:"vibration"`
}

// event is what a step did besides producing a sample.
type event struct {
	faultStarted, faultCleared bool
	dropConnection             bool
}

// model is one machine's physics. It is deterministic given its rng and
// the sequence of steps and commands; the caller serialises access.
type model struct {
	rng           *rand.Rand
	tau           time.Duration
	faultRate     float64
	faultDuration time.Duration
	reconnectRate float64

	setpoint, temp, vib, rpm float64
	nominalRPM, baseVib      float64
	state                    State
	stopped                  bool          // operator stop: idle after a fault clears
	faultLeft                time.Duration // remaining fault time
}

// newModel builds machine index's model (0-based, unique within a run).
func newModel(cfg Config, index int) *model {
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(index)+0x9e3779b97f4a7c15))
	m := &model{
		rng:           rng,
		tau:           cfg.DriftTau,
		faultRate:     cfg.FaultRate,
		faultDuration: cfg.FaultDuration,
		reconnectRate: cfg.ReconnectRate,
		setpoint:      float64(60 + 5*rng.IntN(5)),
		temp:          ambientC + 3*rng.Float64(),
		nominalRPM:    float64(6000 + 500*rng.IntN(9)),
		baseVib:       1.2 + 1.2*rng.Float64(),
		state:         StateRunning,
	}
	m.vib = m.baseVib
	m.rpm = m.nominalRPM
	return m
}

// step advances the machine by dt and returns its sample (TS unset).
func (m *model) step(dt time.Duration) (Sample, event) {
	var ev event
	secs := dt.Seconds()
	switch m.state {
	case StateRunning:
		if m.rng.Float64() < m.faultRate*secs {
			m.state = StateFault
			m.faultLeft = time.Duration((0.5 + m.rng.Float64()) * float64(m.faultDuration))
			m.vib = 12 + 13*m.rng.Float64()
			ev.faultStarted = true
		}
	case StateFault:
		m.faultLeft -= dt
		if m.faultLeft <= 0 {
			m.state = StateRunning
			if m.stopped {
				m.state = StateIdle
			}
			ev.faultCleared = true
		}
	}
	ev.dropConnection = m.rng.Float64() < m.reconnectRate*secs

	alpha := 1 - math.Exp(-secs/m.tau.Seconds())
	fast := 1 - math.Exp(-secs/2) // spindle spins up and down in ~2 s
	targetTemp, targetRPM := ambientC, 0.0
	if m.state == StateRunning {
		targetTemp, targetRPM = m.setpoint, m.nominalRPM
	}
	m.temp += (targetTemp-m.temp)*alpha + 0.1*m.rng.NormFloat64()
	m.rpm += (targetRPM - m.rpm) * fast
	rpmNoise := 0.0
	if targetRPM > 0 {
		rpmNoise = 15 * m.rng.NormFloat64()
	}
	switch m.state {
	case StateRunning:
		m.vib = m.baseVib + 0.15*m.rng.NormFloat64()
	case StateIdle:
		m.vib = 0.1 + 0.03*m.rng.NormFloat64()
	case StateFault:
		if !ev.faultStarted { // the spike decays toward a rough 6 mm/s
			m.vib += (6-m.vib)*fast + 0.5*m.rng.NormFloat64()
		}
	}
	return Sample{
		Temp:       round(m.temp, 2),
		Vibration:  round(math.Max(m.vib, 0.01), 2),
		SpindleRPM: math.Max(math.Round(m.rpm+rpmNoise), 0),
		State:      m.state,
		Setpoint:   m.setpoint,
	}, ev
}

// current is the machine's state now, without advancing it.
func (m *model) current() Sample {
	return Sample{
		Temp:       round(m.temp, 2),
		Vibration:  round(math.Max(m.vib, 0.01), 2),
		SpindleRPM: math.Max(math.Round(m.rpm), 0),
		State:      m.state,
		Setpoint:   m.setpoint,
	}
}

// Command is a message received on a machine's cmd topic.
type Command struct {
	// ID, when set, is echoed in the reply for correlation.
	ID string `json:"id,omitempty"`
	// Setpoint is the new temperature set-point in °C.
	Setpoint *float64 `json:"setpoint,omitempty"`
	// State is "start" or "stop".
	State string `json:"state,omitempty"`
}

// Reply answers a Command on the reply topic (Config.ReplyTopic).
type Reply struct {
	// ID is the command's ID.
	ID string `json:"id,omitempty"`
	// OK is true when the whole command was applied.
	OK bool `json:"ok"`
	// Applied holds what changed, keyed like the command.
	Applied map[string]any `json:"applied,omitempty"`
	// Error says why the command was refused.
	Error string `json:"error,omitempty"`
}

// parseCommand decodes a command strictly: unknown fields are errors.
func parseCommand(payload []byte) (Command, error) {
	var c Command
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("decoding command: %w", err)
	}
	if c.Setpoint == nil && c.State == "" {
		return c, errors.New(`command has neither "setpoint" nor "state"`)
	}
	return c, nil
}

// apply checks the whole command first and changes nothing unless all of
// it is acceptable.
func (m *model) apply(c Command) (map[string]any, error) {
	if c.Setpoint != nil {
		sp := *c.Setpoint
		if math.IsNaN(sp) || sp < minSetpoint || sp > maxSetpoint {
			return nil, fmt.Errorf("setpoint %v not in %v..%v", sp, minSetpoint, maxSetpoint)
		}
	}
	switch c.State {
	case "", "stop":
	case "start":
		if m.state == StateFault {
			return nil, fmt.Errorf("machine is in fault for another %v; start refused", m.faultLeft.Round(time.Second))
		}
	default:
		return nil, fmt.Errorf("state %q: want start or stop", c.State)
	}
	applied := map[string]any{}
	if c.Setpoint != nil {
		m.setpoint = *c.Setpoint
		applied["setpoint"] = m.setpoint
	}
	switch c.State {
	case "stop":
		m.stopped = true
		if m.state == StateRunning {
			m.state = StateIdle
		}
		applied["state"] = "stop"
	case "start":
		m.stopped = false
		m.state = StateRunning
		applied["state"] = "start"
	}
	return applied, nil
}

func round(v float64, places int) float64 {
	p := math.Pow10(places)
	return math.Round(v*p) / p
}
