"""nbgrader preprocessors of the course's Autograde pipeline (registered in nbgrader_config.py).

``SandboxedExecute`` runs the notebook in a sandboxed kernel where checks only publish plain data;
``JudgeChecks`` decides every test cell outside that kernel, against the reference solution's records;
``ClearEmptyMetadata`` keeps one duplicated cell from stopping a whole notebook;
``ShowReferenceAnswers`` shows graders the reference answer under each written answer;
``ApplyDeadlines`` writes the course's due date and extensions where nbgrader's late-penalty step reads them;
``ShowDueDate`` (release) puts the due date and the late rule at the top of each notebook;
``MathToMathML`` (feedback) makes math render without a CDN.
"""
from coursekit.preprocessors.apply_deadlines import ApplyDeadlines
from coursekit.preprocessors.clear_empty_metadata import ClearEmptyMetadata
from coursekit.preprocessors.judge_checks import JudgeChecks
from coursekit.preprocessors.math_to_mathml import MathToMathML
from coursekit.preprocessors.sandboxed_execute import SandboxedExecute
from coursekit.preprocessors.show_due_date import ShowDueDate
from coursekit.preprocessors.show_reference_answers import ShowReferenceAnswers

__all__ = ["ApplyDeadlines", "ClearEmptyMetadata", "JudgeChecks", "MathToMathML", "SandboxedExecute", "ShowDueDate",
           "ShowReferenceAnswers"]
