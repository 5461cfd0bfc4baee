"""The method contract and its tools: what a method implements (model_api, dialogue_api), how it registers
(registry) and is found by name (lookup), and the author's tools (check_method, new_method).

Imports nothing: the method packages import harness.methods.registry / model_api below the lookup that loads them."""
