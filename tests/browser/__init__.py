"""JupyterLab, the formgrader and the reports in headless Chromium."""
