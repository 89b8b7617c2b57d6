mod audit;
mod bad_input;
mod commands;
mod policies;
mod rules;
mod support;
mod synth;
mod waivers;
