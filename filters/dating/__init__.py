"""Date attribution of documents: evidence from the text, the author's life and the writing style, combined into
a year with a range, a time slice, a confidence and the evidence behind it (the `diachronic` pipeline)."""
