"""Label Studio in the loop: templates, a local server, push of outputs, pull of annotations."""
