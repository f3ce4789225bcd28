package assign

import "time"

// Status is an experiment's place in its lifecycle:
// DRAFT → RUNNING ⇄ PAUSED → CONCLUDED.
type Status int

// Lifecycle states.
const (
	StatusDraft Status = iota
	StatusRunning
	StatusPaused
	StatusConcluded
)

// Reason says why a unit got the variant it got.
type Reason int

// Reasons. Only ReasonHash and ReasonSticky assignments were randomized and
// count in analysis.
const (
	ReasonHash        Reason = iota // the unit's hash picked the variant
	ReasonSticky                    // a stored first assignment was reused
	ReasonOverride                  // an admin pinned the unit
	ReasonWinner                    // the experiment concluded; everyone gets the winner
	ReasonPaused                    // the experiment is paused (or not running); control
	ReasonNotTargeted               // the unit's attributes miss the targeting rules; control
	ReasonNotInSlice                // the unit's layer bucket is outside the test's slice; control
	ReasonFallback                  // an SDK has no config yet; control
)

// Variant is one arm of an experiment. Weights are relative integers; the
// first variant of an experiment is its control.
type Variant struct {
	Name   string
	Weight uint32
}

// Op is a targeting operator.
type Op int

// Targeting operators.
const (
	OpEq    Op = iota // attribute equals Values[0]
	OpIn              // attribute is one of Values
	OpNotIn           // attribute is absent or none of Values
)

// Rule is one targeting condition on a unit attribute. A unit matches an
// experiment when it matches every rule.
type Rule struct {
	Attribute string
	Op        Op
	Values    []string
}

// Slice is the half-open range [Start, End) of a layer's LayerBuckets
// buckets that an experiment owns. Experiments of one layer own disjoint
// slices.
type Slice struct {
	Start, End uint32
}

// LayerBuckets is the number of buckets a layer's hash is divided into.
const LayerBuckets = 10000

// Interference is one kind of interference over one scope of the service
// dependency graph, e.g. {Kind: "latency", Scope: "change_downstream"}.
type Interference struct {
	Kind  string
	Scope string
}

// MetricKind says how the outcome metric is read from the measure service's
// span.
type MetricKind int

// Metric kinds.
const (
	MetricLatencyMS MetricKind = iota // duration of the measure service's span
	MetricError                       // 1 when the span status is error, else 0
	MetricAttribute                   // a numeric span attribute, named by Metric.Attribute
)

// Aggregate says how a metric's request values are combined into one
// value per unit (the randomization unit is the unit of analysis: a cell
// holds one row per unit).
type Aggregate int

// Aggregates. The zero value, AggregateMean, is the default.
const (
	// AggregateMean is the unit's mean over its counted requests; every
	// unit weighs one.
	AggregateMean Aggregate = iota
	// AggregateSum is the unit's total over its counted requests
	// (revenue per user).
	AggregateSum
	// AggregateAny is 1 when any counted request of the unit had a
	// non-zero value (conversion), else 0.
	AggregateAny
	// AggregateCount is the unit's number of counted requests
	// (engagement); the metric's value is not read beyond being present.
	AggregateCount
	// AggregateRatio is the request-level mean of the arm, Σ metric /
	// Σ requests over its units, with its variance by the delta method
	// over units.
	AggregateRatio
)

// Metric is an experiment's outcome metric.
type Metric struct {
	Kind      MetricKind
	Attribute string // the span attribute key when Kind == MetricAttribute
	// HigherIsBetter is the direction of improvement.
	HigherIsBetter bool
	// Aggregate is how the metric is aggregated per unit.
	Aggregate Aggregate
}

// Plan is an experiment's analysis plan.
type Plan struct {
	Alpha float64 // significance level, e.g. 0.05
	Power float64 // target power, e.g. 0.8
	// MDE is the minimum detectable effect, an absolute difference on the
	// metric's scale.
	MDE float64
	// SD is the metric's assumed standard deviation, used for the sample
	// size until enough data gives an observed one. Zero means unknown.
	SD float64
	// Interactions are the interactions of this test with others that
	// matter to its owner: the per-cell sample size also powers each (when
	// the other test is in the subset), and the anytime-valid stopping
	// rule (DECIDED) waits for each to be decided.
	Interactions []PlannedInteraction
}

// PlannedInteraction names one interaction a test's owner cares about.
type PlannedInteraction struct {
	// With is the other test's id.
	With string
	// MDE is the minimum detectable interaction, on the scale the report
	// shows it: the difference of differences (the test's effect where
	// With runs its variant minus its effect where With runs control),
	// absolute, on the metric's scale.
	MDE float64
}

// Phase is one period of an experiment during which its weights did not
// change. Phase numbers start at 1 and each weight change opens the next.
type Phase struct {
	Number    int
	Weights   []uint32
	StartedAt time.Time
}

// Experiment is an A/B test as registered by its team.
type Experiment struct {
	ID             string
	Owner          string
	Description    string
	ChangeService  string // where the change is deployed
	MeasureService string // where the metric is measured
	Metric         Metric
	Variants       []Variant // first is control
	Layer          string    // optional layer id
	Slice          Slice     // the layer slice; meaningful only when Layer != ""
	Targeting      []Rule
	Sticky         bool
	// Salt is the experiment's hash salt; empty means the experiment id.
	Salt        string
	Emits       []Interference
	Susceptible []Interference
	Plan        Plan

	Status Status
	Winner string  // set when Status == StatusConcluded
	Phase  int     // the current phase number, 0 before the first start
	Phases []Phase // history, oldest first

	CreatedAt time.Time
	UpdatedAt time.Time
}

// Layer groups mutually exclusive experiments: they share the layer's hash
// (salted with the layer id) and own disjoint slices of it.
type Layer struct {
	ID          string
	Description string
	CreatedAt   time.Time
}

// Override pins one unit to one variant of one experiment.
type Override struct {
	Experiment string
	Unit       string
	Variant    string
}
