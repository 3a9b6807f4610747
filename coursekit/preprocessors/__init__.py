"""nbgrader preprocessors of the course's Autograde pipeline (registered in nbgrader_config.py).

``SandboxedExecute`` runs the notebook in a sandboxed kernel where checks only publish plain data;
``JudgeChecks`` decides every test cell outside that kernel, against the reference solution's records;
``ClearEmptyMetadata`` keeps one duplicated cell from stopping a whole notebook;
``ShowReferenceAnswers`` shows graders the reference answer under each written answer;
``MathToMathML`` (feedback) makes math render without a CDN.
"""
from coursekit.preprocessors.clear_empty_metadata import ClearEmptyMetadata
from coursekit.preprocessors.judge_checks import JudgeChecks
from coursekit.preprocessors.math_to_mathml import MathToMathML
from coursekit.preprocessors.sandboxed_execute import SandboxedExecute
from coursekit.preprocessors.show_reference_answers import ShowReferenceAnswers

__all__ = ["ClearEmptyMetadata", "JudgeChecks", "MathToMathML", "SandboxedExecute", "ShowReferenceAnswers"]
