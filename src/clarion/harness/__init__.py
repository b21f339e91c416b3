"""The harness around the product: `clarion demo`, `clarion bench`, what they measure with
and the synthetic subscribers they seed. Only those two commands, the tests and `bench/`
import it; nothing the workers or the API run does."""
