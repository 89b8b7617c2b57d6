mod audit;
mod bad_input;
mod policies;
mod rules;
mod support;
mod synth;
