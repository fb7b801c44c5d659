//! The baselines of the CAREER paper: the empirical transition frequencies, the multinomial
//! logit and bag-of-jobs.

pub mod bag_of_jobs;
pub mod empirical;
pub mod logit;
