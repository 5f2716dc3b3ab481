//! Every diagnostic code, with its severity and one-line meaning.
//!
//! This table is the single index of codes; `docs/errors.md` explains each one
//! with a goal that triggers it, and `tests/errors_doc.rs` checks that every
//! code here is documented there and that each example really produces it.

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = $text:literal, $sev:ident, $title:literal; )*) => {
        /// A diagnostic code: `E` for errors, `W` for warnings.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $(#[$doc])* $name, )*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            /// The code as written in output: `E0201`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => $text,)* }
            }

            /// Whether this code is an error or a warning.
            pub fn severity(self) -> super::Severity {
                match self { $(Code::$name => super::Severity::$sev,)* }
            }

            /// What the code means, in a few words.
            pub fn title(self) -> &'static str {
                match self { $(Code::$name => $title,)* }
            }

            /// Looks a code up by its text.
            pub fn parse(s: &str) -> Option<Code> {
                match s { $($text => Some(Code::$name),)* _ => None }
            }
        }
    };
}

codes! {
    // ---- reading and lexing ----
    Syntax = "E0001", Error, "syntax error";
    UnterminatedString = "E0002", Error, "unterminated string";
    UnterminatedComment = "E0003", Error, "unterminated block comment";
    InvalidEscape = "E0004", Error, "invalid escape in a string";
    IntegerOutOfRange = "E0005", Error, "integer literal out of range";
    UnexpectedChar = "E0006", Error, "unexpected character";
    NotUtf8 = "E0007", Error, "source is not valid UTF-8";
    TooDeep = "E0008", Error, "formula nested too deeply";
    Unreadable = "E0009", Error, "cannot read a file";
    EmptyGoal = "E0010", Error, "the goal file declares nothing";
    NotAFileOrTooLarge = "E0011", Error, "input is not a regular file or is too large";
    // ---- names ----
    UnknownComponent = "E0101", Error, "unknown component";
    UnknownName = "E0102", Error, "unknown variable or host";
    UnknownConstraintset = "E0103", Error, "unknown constraintset";
    Duplicate = "E0104", Error, "duplicate declaration";
    DuplicateVariable = "E0105", Error, "variable bound twice in one scope";
    ImportCycle = "E0106", Error, "import cycle";
    ImportNotFound = "E0107", Error, "import not found";
    // ---- ports and attributes ----
    UnknownPort = "E0201", Error, "no such port";
    UnknownAttribute = "E0202", Error, "no such attribute";
    MixedAttributeTypes = "E0203", Error, "attribute with mixed types";
    DuplicatePort = "E0204", Error, "duplicate port";
    DuplicateAttribute = "E0205", Error, "duplicate attribute";
    // ---- sorts ----
    SortMismatch = "E0301", Error, "comparison across sorts";
    NotOrdered = "E0302", Error, "ordering comparison on non-integers";
    NotArithmetic = "E0303", Error, "arithmetic on non-integers";
    NonLinear = "E0304", Error, "product of two non-constant terms";
    PortDirection = "E0305", Error, "ports of incompatible directions";
    ExternalPort = "E0306", Error, "channel on an external port";
    SelfChannel = "E0307", Error, "channel between two ports of one instance";
    WrongSort = "E0308", Error, "operand of the wrong sort";
    ExpectedPort = "E0309", Error, "expected a port";
    FormulaTermMismatch = "E0310", Error, "formula where a term is expected, or the reverse";
    // ---- workloads: `abs`/`min`/`max`, grouping, inventories (issue 19) ----
    ExtremeArity = "E0320", Error, "`min` or `max` of fewer than two terms";
    ExtremeInSum = "E0321", Error, "`abs`, `min` or `max` inside `sum(…)`";
    GroupMisuse = "E0322", Error, "misused grouping by a host attribute";
    BadInventory = "E0330", Error, "malformed host inventory";
    BadHostRange = "E0331", Error, "bad host range";
    // ---- named instances and replicas (issue 19) ----
    InstanceAttribute = "E0340", Error, "attribute an instance cannot set";
    InstanceAttributeType = "E0341", Error, "instance attribute of the wrong type";
    TooManyInstances = "E0342", Error, "more named instances than can be placed";
    BadInstanceGroup = "E0343", Error, "bad group of named instances";
    InstanceAggregate = "E0344", Error, "`min`/`max` over a type with named instances";
    MissingInstanceAttribute = "E0345", Error, "named instance without a required attribute";
    // ---- declarations ----
    MissingCode = "E0401", Error, "component without `code`";
    MissingPorts = "E0402", Error, "component without `ports`";
    NegativeBound = "E0403", Error, "negative bound";
    BadAttributeValue = "E0404", Error, "ill-formed attribute value";
    BadDirection = "E0405", Error, "unknown port direction";
    UnknownUpgradeAttribute = "E0406", Error, "unknown attribute in an upgrade";
    MissingChanges = "E0407", Error, "upgrade without `changes`";
    // ---- objectives and preferences ----
    ObjectiveNotInteger = "E0471", Error, "objective is not an integer term";
    BadWeight = "E0472", Error, "preference weight is not a positive integer";
    UnboundInSoft = "E0473", Error, "unbound name in an objective or preference";
    SoftInConstraintset = "E0474", Error, "objective or preference inside a constraintset";
    // ---- patterns and `use` ----
    ArgumentCount = "E0501", Error, "wrong number of arguments";
    ArgumentKind = "E0502", Error, "argument of the wrong kind";
    MissingRequiredPort = "E0503", Error, "component lacks a port the pattern requires";
    UnknownParamKind = "E0504", Error, "unknown parameter kind";
    RecursiveUse = "E0505", Error, "constraintset uses itself";
    // ---- upgrades ----
    UpgradeUnknownComponent = "E0601", Error, "upgrade of an unknown component";
    UpgradeUnknownPort = "E0602", Error, "`changes` names an unknown port";
    BadShadow = "E0603", Error, "unknown shadow placement";
    DuplicateUpgrade = "E0604", Error, "component upgraded twice";
    // ---- roles (guarded upgrades on a deployment) ----
    ChangedPortCrossesBoundary = "E0610", Error, "a changed port crosses the cluster boundary";
    ClusterDisagreement = "E0611", Error, "a channel in the cluster changes on one end only";
    NoHostForShadow = "E0612", Error, "no other host for a shadow";
    // ---- simulate (guarded upgrades run in the simulator) ----
    MalformedRoleDocument = "E0620", Error, "malformed role document";
    RoleDocumentMismatch = "E0621", Error, "the role document does not match the deployment";
    BadSimulateOption = "E0622", Error, "bad simulation option";
    // ---- verify ----
    ViolatedClause = "E0701", Error, "a clause is violated by the deployment";
    StructuralViolation = "E0702", Error, "the deployment breaks a configuration rule";
    DddMismatch = "E0703", Error, "the DDD does not match the goal";
    MalformedDdd = "E0704", Error, "malformed DDD";
    // ---- export ----
    CannotExport = "E0705", Error, "the deployment cannot be exported";
    // ---- solving ----
    Unsatisfiable = "E0801", Error, "goal is unsatisfiable";
    SolverGaveUp = "E0802", Error, "the solver gave up";
    GroundingTooLarge = "E0803", Error, "grounding too large";
    SolverOverflow = "E0804", Error, "integer too large for the solver";
    BadFailure = "E0805", Error, "a failure or added host that does not fit the deployment";
    // ---- the manager (`deladas manage`) ----
    BadRequest = "E0806", Error, "a malformed request to the manager";
    StaleGeneration = "E0807", Error, "a plan or DDD for an older generation";
    Internal = "E0901", Error, "internal error";
    // ---- warnings ----
    UnusedVariable = "W0001", Warning, "variable never used";
    EmptyConstraintset = "W0002", Warning, "constraintset with no clauses";
    UnusedComponent = "W0003", Warning, "component no constraint mentions";
    TriviallyTrue = "W0004", Warning, "clause is always true";
    TriviallyFalse = "W0005", Warning, "clause is always false";
    ConstantObjective = "W0011", Warning, "objective is the same in every configuration";
    PreferenceBroken = "W0801", Warning, "a preference is broken";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
