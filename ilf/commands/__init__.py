"""Commands that join core and integrations (`ilf labelstudio ...`, `ilf loop`, a study's Label
Studio export): the top layer, which `ilf.cli` wires up and nothing below imports."""
