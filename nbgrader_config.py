"""nbgrader configuration for the HW6 course kit.

Every nbgrader command (and `coursekit`, which wraps nbgrader's Python API) reads this file.
Paths are relative to the folder holding this file, so the course can be copied anywhere.
"""
import os

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)
course_root = os.path.dirname(os.path.abspath(__file__))

# --- the course -----------------------------------------------------------------------------
c.CourseDirectory.course_id = "hw6-rnn"
c.CourseDirectory.root = course_root
# The SQLite gradebook lives next to this file (never committed).
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(course_root, "gradebook.db")
# nbgrader's exchange (release_assignment / fetch / submit / release_feedback on one multi-user host):
# OUTSIDE the course folder, which no student account may enter. The one setting for its place (README,
# "nbgrader's exchange"); collecting refuses links, FIFOs and oversize files per student.
c.Exchange.root = "/srv/nbgrader/exchange"
# `nbgrader collect` and the formgrader's Collect button run the kit's collect (coursekit/exchange.py).
c.ExchangeFactory.collect = "coursekit.exchange.KitCollect"
# Files that never travel with an assignment. hw6grading is the instructor-only package (judges and
# reference implementations, i.e. answers): nbgrader neither releases it nor copies it into autograded/,
# so no student kernel can see it; the grader imports it from source/ (coursekit/helpers.py).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".pytest_cache",
                            "submission_log.json", "hw6grading"]

# --- what students see ----------------------------------------------------------------------
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# --- the release: nbgrader's own steps, after the kit's optional-parts setting --------------
# Optional parts (3h-3k, as the original homework marks them) count or not by `optional_parts` in
# pyproject.toml's [tool.coursekit] (coursekit/optional.py); it is applied to the points here.
c.GenerateAssignment.preprocessors = [
    "coursekit.optional.ApplyOptionalParts",
    "nbgrader.preprocessors.IncludeHeaderFooter",
    "coursekit.preprocessors.ShowDueDate",  # "Due: ..." and the late rule, when c.LatePolicy.due_dates has one
    "nbgrader.preprocessors.InstantiateTests",
    "nbgrader.preprocessors.LockCells",
    "nbgrader.preprocessors.ClearSolutions",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.CheckCellMetadata",
    "nbgrader.preprocessors.ComputeChecksums",
    "nbgrader.preprocessors.SaveCells",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbgrader.preprocessors.ClearMarkScheme",
    "nbgrader.preprocessors.ComputeChecksums",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# --- autograding: nbgrader's own pipeline, with the kit's steps ------------------------------
# `nbgrader autograde`, the formgrader's Autograde button and `coursekit autograde` all run this.
# Intake (coursekit/intake.py): reason lines, renamed notebooks graded under their real name, links
# moved out of the submission, 0 for notebooks that cannot be read or whose metadata has the wrong JSON
# types. It fails closed: loading the hook guards nbgrader's copy step, so a student for whom intake
# did not finish is not graded (0, one reason line) at every door.
c.Autograde.pre_convert_hook = "coursekit.intake.before_autograde"
c.Autograde.post_convert_hook = "coursekit.intake.after_autograde"
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "coursekit.preprocessors.ClearEmptyMetadata",  # repeated cells become ordinary cells
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
    "coursekit.optional.SkipOptionalParts",  # optional parts that count for nothing are not run (optional_parts)
]
c.Autograde.autograde_preprocessors = [
    "coursekit.preprocessors.SandboxedExecute",  # the student's kernel, sandboxed; checks only publish data
    "coursekit.preprocessors.JudgeChecks",  # every verdict decided here, outside that kernel
    "coursekit.preprocessors.ShowReferenceAnswers",  # for graders in the formgrader; feedback drops them
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "coursekit.preprocessors.ApplyDeadlines",  # due date and extensions.toml into the gradebook
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# A student who deletes a test cell gets it back (and its points count, at 0 if it fails).
c.OverwriteCells.add_missing_cells = True
# Per-cell time limit (seconds). The longest cell is the Problem 3k training (~30 s here).
c.Execute.timeout = 300
c.Execute.startup_timeout = 120
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]
# Keep the autograded notebooks readable even if a student prints megabytes.
c.LimitOutput.max_lines = 500
c.LimitOutput.max_traceback = 50

# The sandbox every student kernel runs in (coursekit/preprocessors/sandboxed_execute.py): an
# unprivileged user, no network, no sight of this course folder, CPU/memory/process/file-size limits.
# Defaults and help: `coursekit` or `nbgrader autograde --help-all`, section SandboxedExecute.
data_dir = os.path.join(course_root, "data", "names")  # Problem 4's data set
c.SandboxedExecute.read_only = [data_dir]
c.SandboxedExecute.environment = {"HW6_DATA_DIR": data_dir}
c.JudgeChecks.environment = {"HW6_DATA_DIR": data_dir}  # judges recompute Problem 4's accuracy
# Every kernel is a fork of one process that imported these once (torch alone costs ~3 CPU-seconds per
# kernel otherwise); the sandbox and limits are the same (coursekit/zygote.py). torch._dynamo is what
# torch imports when a kernel makes its first optimizer (Problem 4's training): 2.6 CPU-seconds more.
c.SandboxedExecute.preload_modules = ["numpy", "torch", "torch._dynamo", "matplotlib.pyplot", "ipywidgets"]

# --- deadlines and late penalties (coursekit/late.py) ---------------------------------------------
# nbgrader's late-penalty step asks the kit's policy; per-student extensions (with their reasons) are in
# extensions.toml beside this file. After changing anything here or there: `coursekit late --recompute`.
# Defaults and help: `coursekit late --help-policy`.
c.AssignLatePenalties.plugin_class = "coursekit.late.LatePolicy"
# c.LatePolicy.due_dates = {"hw6": "2026-12-10T23:59:00+01:00"}
# c.LatePolicy.percent_per_day = 10.0
# c.LatePolicy.max_percent = 50.0
# c.LatePolicy.grace_minutes = 15.0

# --- what instructors' browsers render: the formgrader and feedback pages ---------------------
# Every page staff and students open carries no active content (coursekit/sanitize.py, an nh3
# allow-list): the HTML filters of every HTMLExporter (the formgrader's view, feedback) are replaced by
# the kit's, so each student-derived fragment (Markdown cells, every output) is cleaned as the template
# inserts it, after every preprocessor; feedback pages are then cleaned whole (SanitizedHTMLExporter).
# sanitize_html also makes nbconvert drop application/javascript and widget outputs and show SVG as <img>.
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {"markdown2html": "coursekit.sanitize.markdown2html",
                          "clean_html": "coursekit.sanitize.clean_html"}

# --- feedback -------------------------------------------------------------------------------
# Stock feedback shows hidden tests and their tracebacks, and outputs the grading kernel printed after
# hidden code ran; ours shows the outputs the student submitted and, for test cells, the grader's verdict.
c.GenerateFeedback.exporter_class = "coursekit.sanitize.SanitizedHTMLExporter"
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "coursekit.feedback.HideHiddenTests",
    "coursekit.optional.NoteOptionalParts",  # "Optional part 3h: not counted" on optional cells
    "coursekit.preprocessors.MathToMathML",  # math that renders without a CDN
]
