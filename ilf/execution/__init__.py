"""Running generated code: a sandboxed executor for programs and their unit tests."""

from ilf.execution.sandbox import ExecutionResult, Limits, Sandbox, SandboxUnavailable, build_program

__all__ = ["ExecutionResult", "Limits", "Sandbox", "SandboxUnavailable", "build_program"]
