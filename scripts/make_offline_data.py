#!/usr/bin/env python3
"""Generate the small offline data set bundled with `ilf`.

`ilf` trains language models from language feedback.  Its pipeline reads data
in the field layout of the public SLF5K summarization-feedback dataset (a
Reddit post, a model summary, a human critique of that summary, a human-written
refinement, a reference TL;DR and a pairwise comparison).  To let the pipeline
and its tests run without network access, this script writes a synthetic
stand-in with the same fields:

    train.jsonl (200 rows), development.jsonl (20 rows), test.jsonl (60 rows)

Every text in these files is produced by the templates below; no real Reddit
post, summary or annotation is copied.  Each "model" summary contains exactly
one deliberate flaw (omission, wrong detail, vagueness or rambling), and the
feedback names that flaw together with the concrete detail a good summary
needs, so that feedback can be matched to the refinement that fixes it.

The output is fully deterministic for a given --seed (standard library only).
"""

import argparse
import json
import os
import random

SPLITS = (("train", 200), ("development", 20), ("test", 60))

# Narrator forms.  Posts are written in the first person; summaries and
# feedback talk about the poster in the third person, while the author's own
# TL;DR uses the first person.  Summary templates therefore avoid verbs that
# agree with the narrator ("has", "is") so one template renders in both.
THIRD_PERSON = {
    "F": {"subj": "she", "obj": "her", "poss": "her", "refl": "herself", "noun": "woman"},
    "M": {"subj": "he", "obj": "him", "poss": "his", "refl": "himself", "noun": "man"},
}
FIRST_PERSON = {"subj": "I", "obj": "me", "poss": "my", "refl": "myself"}
OTHER_PERSON = {
    "F": {"o_subj": "she", "o_obj": "her", "o_poss": "her", "O_subj": "She"},
    "M": {"o_subj": "he", "o_obj": "him", "o_poss": "his", "O_subj": "He"},
}

# Scenario slot specs: a list means "pick one"; ("money", lo, hi, step) and
# ("num", lo, hi, step, fmt) draw a number; the "who" slot is a list of
# (noun, gender) pairs where gender "?" is decided per row.
# ---------------------------------------------------------------------------
PEOPLE_PARTNER = [("boyfriend", "M"), ("girlfriend", "F"), ("partner", "?"), ("husband", "M"), ("wife", "F")]
CITIES = ["Denver", "Seattle", "Austin", "Chicago", "Boston", "Atlanta", "Portland", "Phoenix"]
DURATIONS_LONG = ["eight months", "one year", "two years", "three years", "five years"]
DURATIONS_SHORT = ["two weeks", "three weeks", "five weeks", "two months", "three months"]
TIMES = ["three", "four", "five", "six"]


def scenario(sub, titles, background, problem, tried, ask, gist, q, topic, slots):
    """Bundle one post template; `gist` and `q` are the summary-ready facts."""
    return {
        "sub": sub,
        "titles": titles,
        "background": background,
        "problem": problem,
        "tried": tried,
        "ask": ask,
        "gist": gist,
        "q": q,
        "topic": topic,
        "slots": slots,
    }


SCENARIOS = [
    # ---------------------------------------------------------------- relationships
    scenario(
        "relationships",
        [
            "My {who} expects me to cover every date, how do I bring it up?",
            "Splitting costs with my {who} of {duration} feels completely one-sided",
        ],
        "I ({age}{g}) have been with my {who} ({o_age}{o_g}) for {duration}. We both work full time and earn about the same.",
        "Lately I pay for almost everything, from dinners to groceries to weekend trips. Last month I spent around {amount} on things we did together, and {o_subj} spent close to nothing.",
        [
            "I hinted that we could take turns paying, but {o_subj} laughed it off and changed the subject.",
            "I started keeping a list of expenses, but every time I try to mention it I chicken out.",
        ],
        [
            "How do I bring up splitting costs without it turning into a huge fight?",
            "Is there a way to raise splitting costs that won't make {o_obj} defensive?",
        ],
        "{poss} {who} lets {obj} pay for nearly everything, about {amount} last month",
        "how to bring up splitting costs without a fight",
        "a partner and money",
        {"who": PEOPLE_PARTNER, "duration": DURATIONS_LONG, "amount": ("money", 300, 1200, 50)},
    ),
    scenario(
        "relationships",
        ["My {who} got a job in {place} and wants us to move", "Should I move across the country for my {who}'s new job?"],
        "My {who} ({o_age}{o_g}) and I ({age}{g}) have been together for {duration} and rent a small apartment we both love.",
        "Last week {o_subj} accepted a job offer in {place} and wants us to move there within two months. My family, my friends and my own job are all here.",
        [
            "We talked about long distance for a while, but {o_subj} says that would only delay the inevitable.",
            "I asked if {o_subj} could work remotely instead, but the company said no.",
        ],
        [
            "Should I move with {o_obj}, or is it fair to ask {o_obj} to turn it down?",
            "Am I being selfish for wanting {o_obj} to decline the offer?",
        ],
        "{poss} {who} took a job in {place} and wants to move there together",
        "whether to move too or ask {o_obj} to decline",
        "a partner and a move",
        {"who": PEOPLE_PARTNER, "duration": DURATIONS_LONG, "place": CITIES},
    ),
    scenario(
        "relationships",
        ["Caught my {who} going through my phone again", "My {who} admitted to reading my messages {n_times} times, now what?"],
        "I ({age}{g}) moved in with my {who} ({o_age}{o_g}) about a year ago after dating for {duration}.",
        "A few days ago I caught {o_obj} scrolling through my phone while I was in the shower. When I asked, {o_subj} admitted doing it {n_times} times since we moved in.",
        [
            "{O_subj} apologized and said {o_subj} just felt insecure, but nothing I did explains it.",
            "I told {o_obj} how violated I felt, and {o_subj} got defensive instead of apologizing.",
        ],
        ["Is this a dealbreaker, or is it something couples can work through?", "Should I end things over this, or am I overreacting?"],
        "{poss} {who} admitted to secretly reading {poss} phone {n_times} times",
        "whether this should be a dealbreaker",
        "trust in a relationship",
        {"who": PEOPLE_PARTNER, "duration": DURATIONS_LONG, "n_times": TIMES},
    ),
    scenario(
        "relationships",
        ["Being a bridesmaid for my {who} is going to cost {amount}", "Can't afford my {who}'s wedding, how do I tell her?"],
        "My {who} ({o_age}F) asked me ({age}{g}) to be in her wedding party, and I said yes right away because we have been close for {duration}.",
        "Now the dress, the shower and a bachelorette weekend add up to roughly {amount}. I just started a new job and honestly cannot afford that right now.",
        [
            "I offered to help with planning instead of going on the trip, but she seemed hurt.",
            "I looked for cheaper options, but the dress and trip are already booked by the group.",
        ],
        [
            "Should I drop out of the wedding party or find a way to pay?",
            "How do I tell her I can't afford it without wrecking our friendship?",
        ],
        "being a bridesmaid for {poss} {who} will cost {amount}, more than {subj} can afford",
        "whether to drop out of the wedding party",
        "a wedding",
        {
            "who": [("sister", "F"), ("best friend", "F"), ("cousin", "F"), ("college roommate", "F")],
            "duration": ["ten years", "fifteen years", "six years", "most of my life"],
            "amount": ("money", 900, 2600, 100),
        },
    ),
    scenario(
        "relationships",
        ["My {who}'s {parent} has been staying with us for {duration}", "Houseguest from my {who}'s side won't leave, need advice"],
        "My {who} ({o_age}{o_g}) and I ({age}{g}) share a two bedroom place, and we both work from home.",
        "{O_subj} invited {o_poss} {parent} to stay for a weekend, and that was {duration} ago. There is still no end date, and I have no quiet space left to work.",
        [
            "I mentioned it once, and {o_subj} said I was being cold to family.",
            "I have been working from cafes to cope, but that costs money and energy.",
        ],
        ["How do I ask my {who} to set a move-out date without starting a war?", "What is a fair way to ask for our home back?"],
        "{poss} {who}'s {parent} came for a weekend and has stayed {duration}",
        "how to ask {poss} {who} for a move-out date",
        "a partner's family",
        {"who": PEOPLE_PARTNER, "duration": DURATIONS_SHORT, "parent": ["mother", "father"]},
    ),
    scenario(
        "relationships",
        ["My {who} still texts {o_poss} ex every single day", "Is it controlling to ask my {who} to stop talking to an ex?"],
        "I ({age}{g}) have been dating my {who} ({o_age}{o_g}) for {duration}, and mostly things are great.",
        "The one thing that bothers me is that {o_subj} still texts {o_poss} ex almost daily, often late at night. {O_subj} says they are just friends and that I have nothing to worry about.",
        [
            "I tried to be cool about it, but I catch myself checking when {o_subj} is on the phone.",
            "I brought it up calmly once, and {o_subj} said I was being jealous.",
        ],
        ["Would it be controlling to ask {o_obj} to stop?", "Is it unreasonable to want {o_obj} to cut back on contact with the ex?"],
        "{poss} {who} still texts an ex almost daily, often late at night",
        "whether asking {o_obj} to stop would be controlling",
        "a partner's ex",
        {"who": PEOPLE_PARTNER, "duration": DURATIONS_LONG},
    ),
    # ---------------------------------------------------------------- personalfinance
    scenario(
        "personalfinance",
        ["Use my emergency fund to pay off a {apr} credit card?", "{amount} in credit card debt, {savings} saved, what should I do?"],
        "I ({age}{g}) finally have some savings, {savings} sitting in a regular savings account.",
        "I also carry {amount} on a credit card at {apr} interest from when I was between jobs last year. My job is stable now and I pay more than the minimum.",
        [
            "I tried calling the card company to lower the rate, but they refused.",
            "I looked into a balance transfer card, but I was not approved.",
        ],
        ["Should I use most of my savings to pay the card off at once?", "Is it dumb to drain the emergency fund to kill this debt?"],
        "{poss} savings are {savings}, but {poss} card debt is {amount} at {apr}",
        "whether to use savings to pay the card off",
        "money",
        {"amount": ("money", 2000, 9000, 500), "savings": ("money", 3000, 12000, 1000), "apr": ["19%", "22%", "24%", "27%", "29%"]},
    ),
    scenario(
        "personalfinance",
        [
            "My {car_age}-year-old car needs a {amount} repair, fix it or replace it?",
            "Mechanic quoted {amount} for my old car, is it worth it?",
        ],
        "I ({age}{g}) drive a {car_age}-year-old sedan that I own outright, and I need it to commute to work.",
        "It started making a grinding noise, and the mechanic says the transmission needs work costing about {amount}. The car is probably worth only a little more than that.",
        ["I got a second quote, and it was almost the same.", "I checked used car prices, but anything reliable seems to cost a fortune."],
        ["Should I fix it or put that money toward another car?", "Is it smarter to repair it or start shopping for a replacement?"],
        "{poss} {car_age}-year-old car needs a {amount} transmission repair",
        "whether to fix it or buy another car",
        "a car",
        {"amount": ("money", 1500, 4500, 100), "car_age": ["nine", "eleven", "twelve", "fourteen"]},
    ),
    scenario(
        "personalfinance",
        ["My {who} wants to borrow {amount} again", "Family member asking for another loan, how do I say no?"],
        "I ({age}{g}) have been careful with money and finally built up some savings over {duration}.",
        "Now my {who} is asking to borrow {amount} for a car down payment. The last time I lent {o_obj} money it was never paid back, and we never talked about it.",
        [
            "I suggested a written repayment plan, and {o_subj} acted offended.",
            "I said I needed to think about it, and {o_subj} has texted me every day since.",
        ],
        ["How do I say no without hurting our relationship?", "Is there a kind way to refuse that won't blow up the family?"],
        "{poss} {who} wants to borrow {amount}, though an earlier loan was never repaid",
        "how to say no without hurting the relationship",
        "family and money",
        {
            "who": [("brother", "M"), ("sister", "F"), ("mom", "F"), ("dad", "M"), ("uncle", "M")],
            "duration": ["two years", "three years", "four years"],
            "amount": ("money", 1000, 8000, 500),
        },
    ),
    scenario(
        "personalfinance",
        [
            "First real job pays {amount}, how much should go to retirement?",
            "New job offers a {match} match and I don't know where to start",
        ],
        "I ({age}{g}) just started my first full-time job after school, and it pays {amount} a year.",
        "The company offers a retirement plan with a {match} match, and I also want to save for a car and an emergency fund. I have no debt besides a small phone payment.",
        ["I read a few guides, but they all seem to contradict each other.", "My parents never invested, so I have nobody to ask at home."],
        [
            "How much should I put toward retirement versus regular savings?",
            "What split between retirement and savings makes sense at my age?",
        ],
        "{poss} first full-time job pays {amount} and offers a {match} retirement match",
        "how much to put into retirement versus savings",
        "a new salary",
        {"amount": ("money", 42000, 88000, 2000), "match": ["3%", "4%", "5%", "6%"]},
    ),
    scenario(
        "personalfinance",
        ["Insurance denied my {amount} ER bill, what now?", "Got a surprise {amount} hospital bill after my insurer said no"],
        "About {duration} ago I ({age}{g}) went to the emergency room for a bad allergic reaction.",
        "I assumed insurance would cover it, but yesterday I got a bill for {amount} with a note saying the claim was denied. I don't have that kind of cash lying around.",
        [
            "I called the hospital, and they only said I could talk to my insurer.",
            "I called the insurer, and the person I spoke to could not explain the denial.",
        ],
        ["Should I appeal the denial or just set up a payment plan?", "Is an appeal worth it, or should I ask for a payment plan?"],
        "{poss} insurer denied a {amount} emergency room bill from {duration} ago",
        "whether to appeal or ask for a payment plan",
        "a medical bill",
        {"amount": ("money", 600, 5000, 100), "duration": ["two months", "three months", "six weeks", "four months"]},
    ),
    scenario(
        "personalfinance",
        ["Inherited {amount} from my {who}, pay loans or invest?", "Unexpected inheritance and {loans} in student loans"],
        "My {who} passed away earlier this year, and I ({age}{g}) was surprised to learn {o_subj} left me {amount}.",
        "I still have {loans} in student loans at around six percent, and I rent, so I have no house to pay off. I want to honor {o_obj} by not wasting it.",
        [
            "I spoke to a bank advisor, but it felt like a sales pitch.",
            "I have left the money in checking for now because I am scared of choosing wrong.",
        ],
        ["Should I pay off the loans or invest the money?", "Is it better to clear the student loans or invest most of it?"],
        "{poss} {who} left {obj} {amount}, and {poss} student loans total {loans}",
        "whether to pay off the loans or invest",
        "an inheritance",
        {
            "who": [("grandmother", "F"), ("grandfather", "M"), ("aunt", "F"), ("uncle", "M")],
            "amount": ("money", 15000, 60000, 5000),
            "loans": ("money", 12000, 40000, 2000),
        },
    ),
    # ---------------------------------------------------------------- jobs
    scenario(
        "jobs",
        [
            "My {who} keeps asking for {hours} unpaid extra hours a week",
            "Salaried but working {hours} extra hours for free, is this normal?",
        ],
        "I ({age}{g}) have worked at a small marketing agency for {duration}.",
        "Since a coworker quit, my {who} expects me to stay about {hours} extra hours every week. I am salaried, so none of it is paid, and nobody has mentioned hiring a replacement.",
        [
            "I asked about comp time, and {o_subj} said everybody is pitching in.",
            "I tried leaving on time twice, and I got passive-aggressive emails both nights.",
        ],
        ["Should I push back or just start looking for another job?", "Is it worth fighting this, or should I quietly job hunt?"],
        "{poss} {who} expects about {hours} extra unpaid hours from {obj} every week",
        "whether to push back or start job hunting",
        "work hours",
        {
            "who": [("boss", "?"), ("manager", "?"), ("supervisor", "?")],
            "duration": ["two years", "three years", "eighteen months", "four years"],
            "hours": TIMES + ["ten"],
        },
    ),
    scenario(
        "jobs",
        ["Two job offers: more money in office or remote for less?", "Torn between a {amount} office job and a remote role"],
        "I ({age}{g}) have been job hunting for {duration}, and this week I got two offers at once.",
        "One pays {amount} but is fully in the office with a long commute. The other is fully remote and pays about {gap} less, with a team I liked more in the interviews.",
        [
            "I asked the remote company to match, and they said their budget was fixed.",
            "I made a spreadsheet of pros and cons, and it came out almost even.",
        ],
        ["Which offer would you take in my position?", "Should I go for the money or the remote role?"],
        "{subj} got an office offer paying {amount} and a remote one paying {gap} less",
        "which of the two offers to accept",
        "job offers",
        {
            "duration": ["three months", "five months", "six months"],
            "amount": ("money", 60000, 110000, 5000),
            "gap": ("money", 5000, 15000, 1000),
        },
    ),
    scenario(
        "jobs",
        ["Coworker presented my project as {o_poss} own", "My {who} took credit for my {project} in front of leadership"],
        "I ({age}{g}) spent {duration} building a {project} for our department, mostly on my own.",
        "In yesterday's meeting with leadership, my {who} presented it as {o_poss} own work and did not mention me once. My manager was in the room and congratulated {o_obj}.",
        [
            "I messaged {o_obj} afterward, and {o_subj} said it was a team effort.",
            "I saved all my drafts and emails, but I have not shown them to anyone yet.",
        ],
        ["How do I raise this with my manager without looking petty?", "Should I go to my manager, and if so, how?"],
        "{poss} {who} presented {poss} {project} to leadership as {o_poss} own work",
        "how to raise it with {poss} manager",
        "a coworker",
        {
            "who": [("coworker", "?"), ("teammate", "?"), ("senior colleague", "?")],
            "duration": ["three weeks", "two months", "six weeks"],
            "project": ["sales dashboard", "onboarding guide", "budget model", "client report"],
        },
    ),
    scenario(
        "jobs",
        ["Better offer starts in {days} days, can I give short notice?", "Leaving after {duration} with less than two weeks notice"],
        "I ({age}{g}) have been at my current job for {duration}, and I get along with most of the team.",
        "I just got an offer that pays much more, but they need me to start in {days} days. That means I can't give the usual two weeks of notice.",
        [
            "I asked the new company for a later start, and they said the date is firm.",
            "I have been documenting my tasks so the handover will be easier.",
        ],
        ["Is it okay to give less than two weeks' notice here?", "Will short notice burn a bridge, and should I care?"],
        "after {duration} at {poss} job, {subj} got an offer starting in {days} days",
        "whether to give less than two weeks' notice",
        "changing jobs",
        {"duration": ["two years", "three years", "eighteen months", "five years"], "days": ["six", "eight", "nine", "ten"]},
    ),
    scenario(
        "jobs",
        ["No raise in {duration}, how do I ask for one?", "Still making {amount} after {duration}, time to ask for more?"],
        "I ({age}{g}) work as an analyst, and I have picked up more responsibility every year.",
        "My salary of {amount} has not changed in {duration}, even though I now train new hires. Job postings for similar roles list noticeably higher pay.",
        [
            "I mentioned it at my last review, and my boss said budgets were tight.",
            "I collected a list of my wins, but I freeze up when I picture the conversation.",
        ],
        ["How should I ask for a raise?", "What is the best way to ask for a raise without sounding like I'm threatening to leave?"],
        "{poss} {amount} salary has not changed in {duration} despite added duties",
        "how to ask for a raise",
        "pay",
        {"amount": ("money", 45000, 85000, 2500), "duration": ["two years", "three years", "four years"]},
    ),
    scenario(
        "jobs",
        ["How do I explain a {duration} gap on my resume?", "Back to job hunting after caring for my {who}"],
        "I ({age}{g}) left my job to care for my {who} after {o_poss} stroke, and {o_subj} is finally doing well.",
        "Now my resume has a {duration} gap, and I am getting rejections without any interviews. I used to work in logistics and was good at it.",
        [
            "I tried leaving the gap unexplained, but recruiters ask about it immediately.",
            "I took an online course to stay current, but it has not helped much.",
        ],
        ["How do I explain the gap in applications and interviews?", "What should I say when interviewers ask about the gap?"],
        "{poss} resume has a {duration} gap from caring for {poss} {who}",
        "how to explain the gap to employers",
        "a resume",
        {
            "who": [("mother", "F"), ("father", "M"), ("grandmother", "F")],
            "duration": ["one-year", "two-year", "eighteen-month", "three-year"],
        },
    ),
    # ---------------------------------------------------------------- legaladvice
    scenario(
        "legaladvice",
        ["Got rear-ended, insurer offering only {amount}", "Other driver's insurance lowballing me after a crash"],
        "{duration} ago I ({age}{g}) was stopped at a red light when another driver rear-ended me.",
        "The police report says the other driver was at fault. My car needs about twice what their insurer offered, which was {amount}, and my neck still hurts.",
        [
            "I sent them the repair estimate, and they said their number was final.",
            "I asked my own insurer for help, and they told me to handle it with the other company.",
        ],
        ["Should I accept the offer or talk to a lawyer?", "Is it worth getting a lawyer for this?"],
        "after {subj} was rear-ended, the other driver's insurer offered only {amount}",
        "whether to accept the offer or hire a lawyer",
        "a car accident",
        {"duration": ["Two weeks", "Three weeks", "A month", "Six weeks"], "amount": ("money", 1500, 6000, 250)},
    ),
    scenario(
        "legaladvice",
        ["Former employer hasn't paid my last paycheck in {duration}", "Quit my job and they're holding my final {amount} check"],
        "I ({age}{g}) left a restaurant job on good terms after about a year.",
        "My final paycheck of {amount} was due {duration} ago, and the owner keeps saying it is coming. Now {o_subj} has stopped answering my calls completely.",
        [
            "I sent a polite text with the dates I worked, and it was read but not answered.",
            "I went in person, and a manager said the owner handles payroll.",
        ],
        ["How do I actually get this money back?", "What are my options for getting paid?"],
        "{poss} former employer has held back {poss} final {amount} paycheck for {duration}",
        "how to get the money back",
        "an unpaid wage",
        {"duration": ["three weeks", "five weeks", "two months", "six weeks"], "amount": ("money", 400, 2200, 50), "who": [("owner", "?")]},
    ),
    scenario(
        "legaladvice",
        ["Neighbor's tree crushed my fence, {o_subj} won't pay", "Neighbor refuses to cover {amount} fence repair after storm"],
        "I ({age}{g}) own a small house, and my neighbor has a huge dead oak right on our property line.",
        "I told {o_obj} twice over {duration} that it looked dangerous. Last week it fell in a storm and flattened my fence, and the repair quote is {amount}, but {o_subj} says it was an act of nature.",
        [
            "I have texts showing I warned {o_obj}, and photos of the dead branches.",
            "My insurer said they might cover it, but my deductible is almost the same amount.",
        ],
        ["Can I take {o_obj} to small claims court for this?", "Do I have a case in small claims?"],
        "{poss} neighbor won't pay the {amount} repair after {o_poss} dead tree crushed {poss} fence",
        "whether small claims court is an option",
        "a neighbor",
        {"who": [("neighbor", "?")], "duration": ["a year", "six months", "two years"], "amount": ("money", 1200, 4800, 100)},
    ),
    scenario(
        "legaladvice",
        ["Buyer says my {item} never arrived and filed a chargeback", "Sold a {item} online for {amount}, now facing a chargeback"],
        "I ({age}{g}) sold my old {item} online for {amount} about {duration} ago.",
        "I shipped it with tracking, and tracking shows it was delivered. The buyer now claims it never arrived and opened a chargeback, so the money was pulled from my account.",
        [
            "I sent the platform my tracking number, and they have not replied.",
            "I messaged the buyer with the delivery photo, and they blocked me.",
        ],
        ["How do I fight the chargeback?", "What can I do to win this dispute?"],
        "a buyer claims {poss} {item}, sold for {amount}, never arrived despite tracking",
        "how to fight the chargeback",
        "an online sale",
        {
            "item": ["camera", "laptop", "guitar", "tablet", "e-bike"],
            "amount": ("money", 250, 1800, 50),
            "duration": ["two weeks", "three weeks", "a month"],
        },
    ),
    scenario(
        "legaladvice",
        ["Gym kept charging me {amount} a month after I canceled", "Canceled my membership {duration} ago, still being billed"],
        "I ({age}{g}) canceled my gym membership in person and got a paper confirmation.",
        "Somehow they kept charging {amount} a month for {duration} before I noticed. They now say the cancellation was never processed and refuse to refund anything.",
        [
            "I showed them the confirmation slip, and the manager said it was not valid.",
            "I blocked future charges through my bank, but that does not cover the past ones.",
        ],
        ["How do I get a refund for the charges?", "Can I force them to refund the money?"],
        "{poss} gym charged {amount} a month for {duration} after {subj} canceled",
        "how to get a refund",
        "a gym membership",
        {"amount": ("money", 30, 90, 5), "duration": ["four months", "five months", "seven months", "nine months"]},
    ),
    scenario(
        "legaladvice",
        ["Contractor took a {amount} deposit and vanished", "Paid a contractor {duration} ago, no work and no answer"],
        "I ({age}{g}) hired a contractor to redo our kitchen and paid a deposit of {amount}, as the contract asked.",
        "That was {duration} ago. No work has started, {o_subj} stopped answering calls, and the business number now goes to a full voicemail box.",
        [
            "I drove to the address on the contract, and it is an empty office.",
            "I left a review describing what happened, and nothing changed.",
        ],
        ["What legal options do I have to get the deposit back?", "Who do I report this to, and can I recover the money?"],
        "a contractor took {poss} {amount} kitchen deposit {duration} ago and vanished",
        "what legal options are available",
        "a contractor",
        {"who": [("contractor", "?")], "amount": ("money", 2000, 9000, 500), "duration": ["two months", "three months", "ten weeks"]},
    ),
    # ---------------------------------------------------------------- tifu
    scenario(
        "tifu",
        ["TIFU by sending a rant about my {who} to my {who}", "TIFU by texting the wrong person about my {who}"],
        "I ({age}{g}) was venting to a friend after a long shift about how my {who} handles scheduling.",
        "I typed a long rant, called {o_obj} a clueless micromanager, and hit send. Then I realized I had sent it straight to my {who}, who read it within {duration}.",
        ["I sent a quick sorry text, and {o_subj} has not answered.", "I called in sick today because I could not face anyone."],
        ["How do I apologize and keep my job?", "Is there any way to recover from this at work?"],
        "{subj} accidentally sent a rant about {poss} {who} to that same {who}",
        "how to apologize and keep {poss} job",
        "an embarrassing text",
        {"who": [("boss", "?"), ("manager", "?"), ("team lead", "?")], "duration": ["a minute", "two minutes", "five minutes"]},
    ),
    scenario(
        "tifu",
        ["TIFU by locking myself out and breaking a window", "TIFU: a {amount} lesson about spare keys"],
        "Last night I ({age}{g}) came home late and realized my keys were still at the office.",
        "Rather than wait for a locksmith, I tried to climb in through the kitchen window and cracked the whole pane. A replacement will cost about {amount}.",
        [
            "I covered it with cardboard and tape, which looks terrible.",
            "I asked a friend who does repairs, and he said it needs a professional.",
        ],
        ["Should I tell my landlord or fix it quietly?", "Do I have to tell the landlord, or can I just replace it?"],
        "{subj} got locked out and broke a window that costs {amount} to replace",
        "whether to tell the landlord or fix it quietly",
        "a lockout",
        {"amount": ("money", 180, 650, 10)},
    ),
    scenario(
        "tifu",
        ["TIFU by using the wrong name in my {who}'s wedding toast", "TIFU at my {who}'s wedding, in front of {guests} guests"],
        "I ({age}{g}) was asked to give a toast at my {who}'s wedding, in front of about {guests} guests.",
        "I was nervous, and halfway through I used the name of {o_poss} ex instead of the new spouse's name. The room went silent, and I could not recover.",
        [
            "I apologized to the couple at the reception, and they were polite but cold.",
            "I sent flowers the next day, and they have not said anything.",
        ],
        ["How do I make it up to them?", "What can I do to fix this with the couple?"],
        "{subj} used the ex's name in {poss} {who}'s wedding toast before {guests} guests",
        "how to make it up to the couple",
        "a wedding toast",
        {"who": [("brother", "M"), ("sister", "F"), ("best friend", "?"), ("cousin", "?")], "guests": ["80", "120", "150", "200"]},
    ),
    scenario(
        "tifu",
        ["TIFU by dyeing my hair green {days} days before an interview", "TIFU: wrong box of dye, big interview in {days} days"],
        "I ({age}{g}) wanted to cover a few gray hairs before a big interview.",
        "I grabbed the wrong box in the dark at the store, and my hair is now bright green. The interview is in {days} days, in person, for a bank.",
        ["I washed it {n_times} times with dish soap, and it barely faded.", "A salon said they could fix it, but not until next week."],
        ["How can I fix this in time?", "Any tricks to get rid of the green before the interview?"],
        "{subj} accidentally dyed {poss} hair green {days} days before a job interview",
        "how to fix it in time",
        "hair dye",
        {"days": ["two", "three", "four"], "n_times": TIMES},
    ),
    scenario(
        "tifu",
        ["TIFU by hitting reply-all with something personal", "TIFU: {n} coworkers now know about my rash"],
        "I ({age}{g}) meant to reply only to a friend at work about a doctor's visit.",
        "Instead I hit reply-all on a company email, and {n} coworkers got a detailed note about my rash. People have been sending me replies all afternoon.",
        ["I sent a recall request, but it only worked for a handful of people.", "I went home early and turned off notifications."],
        ["How should I handle it at work tomorrow?", "Do I address it or just pretend nothing happened?"],
        "{subj} hit reply-all and sent a personal medical note to {n} coworkers",
        "how to handle work the next day",
        "an email",
        {"n": ["40", "60", "85", "120", "200"]},
    ),
    scenario(
        "tifu",
        ["TIFU by eating my {who}'s {amount} party cake", "TIFU: ate the cake that was meant for a party"],
        "I ({age}{g}) got home from a late shift starving and found a cake in the fridge.",
        "I ate almost half before my {who} came home and told me it was a {amount} custom cake for {o_poss} party the next day. The bakery can't make another in time.",
        [
            "I offered to pay, and {o_subj} said the money is not the point.",
            "I tried to find another cake that night, but everything was closed.",
        ],
        ["How do I make this right?", "What can I do to make it up to {o_obj}?"],
        "{subj} ate half of a {amount} custom cake {poss} {who} ordered for a party",
        "how to make it right",
        "a cake",
        {"who": [("roommate", "?"), ("sister", "F"), ("brother", "M")], "amount": ("money", 60, 220, 10)},
    ),
    # ---------------------------------------------------------------- pets
    scenario(
        "pets",
        ["Rescue dog barks for hours when I leave", "Adopted a dog {duration} ago, separation anxiety is bad"],
        "I ({age}{g}) adopted a rescue {breed} {duration} ago, and she is sweet at home.",
        "When I leave for work she barks for hours, and a neighbor left a note saying it goes on most of the day. I don't want to lose my apartment or give her up.",
        [
            "I tried a puzzle toy and leaving the radio on, with no change.",
            "I recorded her once, and she started barking within ten minutes.",
        ],
        ["How can I ease her separation anxiety?", "What actually works for separation anxiety in dogs?"],
        "{poss} rescue {breed}, adopted {duration} ago, barks for hours when alone",
        "how to ease the separation anxiety",
        "a dog",
        {
            "breed": ["beagle", "terrier mix", "shepherd mix", "husky"],
            "duration": ["two months", "three months", "six weeks", "four months"],
        },
    ),
    scenario(
        "pets",
        ["My {pet_age}-year-old {pet} needs {amount} surgery", "Can't decide about expensive surgery for my {pet}"],
        "I ({age}{g}) have had my {pet} since I was in school, and {o_subj} is {pet_age} now.",
        "The vet found a blockage and says surgery will cost about {amount}, with a good chance of recovery. I can pay part of it, but not all at once.",
        [
            "I asked about payment plans, and the clinic only offers a credit card.",
            "I called two other vets, and their estimates were similar.",
        ],
        ["Should I find a way to pay for the surgery, or consider other options?", "Is it irresponsible to take on debt for this?"],
        "{poss} {pet_age}-year-old {pet} needs surgery costing about {amount}",
        "whether to take on debt for the surgery",
        "a pet's health",
        {
            "who": [("pet", "?")],
            "pet": ["cat", "dog", "rabbit"],
            "pet_age": ["eight", "ten", "twelve"],
            "amount": ("money", 1500, 6000, 250),
        },
    ),
    scenario(
        "pets",
        ["My {who}'s new cat keeps attacking my old cat", "Two cats, one apartment, constant fights"],
        "I ({age}{g}) have a {cat_age}-year-old cat who has always been calm.",
        "My {who} ({o_age}{o_g}) adopted a young cat {duration} ago without asking me. It chases and attacks my cat daily, and mine now hides under the bed.",
        [
            "We tried feeding them on opposite sides of a door, but the fights continued.",
            "I bought a pheromone diffuser, and nothing changed.",
        ],
        ["How do I get the cats to get along?", "Is there a way to fix this, or should I ask my {who} to rehome the cat?"],
        "{poss} {who}'s new cat has attacked {poss} older cat daily for {duration}",
        "how to get the cats to get along",
        "cats",
        {
            "who": [("roommate", "?"), ("partner", "?"), ("sister", "F"), ("brother", "M")],
            "cat_age": ["nine", "eleven", "thirteen"],
            "duration": ["three weeks", "a month", "two weeks"],
        },
    ),
    scenario(
        "pets",
        ["Owner wants back the stray dog I've cared for {duration}", "Took in a stray {duration} ago, now the owner showed up"],
        "About {duration} ago I ({age}{g}) found a skinny dog wandering near the highway and took her in.",
        "I posted notices and got no reply, so I paid for shots and a vet visit costing {amount}. Now a man says she is his dog and wants her back.",
        ["I asked him for proof, and he only had one blurry photo.", "I offered to return her if he pays the vet costs, and he refused."],
        ["Do I legally have to return the dog?", "Must I give her back?"],
        "a man claims the stray dog {subj} took in {duration} ago is his",
        "whether {subj} must legally return the dog",
        "a stray dog",
        {"duration": ["two months", "three months", "four months"], "amount": ("money", 200, 900, 25)},
    ),
    scenario(
        "pets",
        ["My {who} wants to rehome my dog after it chewed the couch", "Dog destroyed {amount} worth of furniture, {who} says rehome it"],
        "I ({age}{g}) brought my dog with me when I moved in with my {who} ({o_age}{o_g}) {duration} ago.",
        "While we were at work the dog chewed up a couch and two chairs worth about {amount}. Now my {who} says {o_subj} wants the dog gone.",
        [
            "I offered to pay for everything and crate the dog, and {o_subj} says that is not enough.",
            "I signed us up for a training class, but it only starts next month.",
        ],
        ["How do we find a compromise that keeps my dog?", "Is there a middle ground here?"],
        "{poss} {who} wants {poss} dog gone after it chewed {amount} of furniture",
        "how to reach a compromise that keeps the dog",
        "a dog",
        {"who": PEOPLE_PARTNER, "duration": ["three months", "six months", "a year"], "amount": ("money", 500, 2500, 100)},
    ),
    scenario(
        "pets",
        ["Dog has barely eaten for {days} days after a food change", "Switched my {breed}'s food and now she won't eat"],
        "I ({age}{g}) switched my {breed} to a cheaper food because of money problems.",
        "She has barely eaten for {days} days now and only sniffs the bowl. She is still drinking and going on walks, but she seems tired.",
        [
            "I tried mixing the old and new food, and she picks out only the old kibble.",
            "I added some warm water and chicken broth, and she ate a few bites.",
        ],
        ["Should I take her to the vet now or wait?", "Is this an emergency or will she adjust?"],
        "{poss} {breed} has barely eaten in {days} days since a food switch",
        "whether to take her to the vet now",
        "a dog",
        {"breed": ["beagle", "poodle", "labrador", "corgi"], "days": ["three", "four", "five"]},
    ),
    # ---------------------------------------------------------------- college
    scenario(
        "college",
        ["Group member has done nothing on a {percent} project", "My {who} hasn't contributed and the deadline is close"],
        "I ({age}{g}) am in a {course} class where a group project counts for {percent} of the final grade.",
        "One {who} has not done anything in {duration}, ignores the group chat and skipped every meeting. The rest of us are covering the work.",
        [
            "We messaged {o_obj} directly, and {o_subj} promised to help but never did.",
            "We split up {o_poss} part among ourselves, but it is a lot of extra work.",
        ],
        ["Should we tell the professor?", "Is it fair to report {o_obj} to the professor?"],
        "a {who} has done nothing for {duration} on a project worth {percent}",
        "whether to tell the professor",
        "a group project",
        {
            "who": [("group member", "?"), ("lab partner", "?"), ("teammate", "?")],
            "course": ["biology", "marketing", "statistics", "history"],
            "percent": ["25%", "30%", "40%"],
            "duration": ["three weeks", "a month", "five weeks"],
        },
    ),
    scenario(
        "college",
        ["Failing {course} with the drop deadline in {days} days", "Should I drop {course} or try to pull my grade up?"],
        "I ({age}{g}) am a {year} and I am taking {course} for my major this semester.",
        "My current grade is a {grade}, and the drop deadline is in {days} days. Dropping would push my graduation back a semester, but a failing grade would hurt my GPA.",
        [
            "I went to office hours, and the professor said a recovery is possible but hard.",
            "I started working with a tutor, but I only had two sessions so far.",
        ],
        ["Should I drop the class?", "Would you drop it or try to pull the grade up?"],
        "{poss} {course} grade is a {grade}, and the drop deadline is in {days} days",
        "whether to drop the class",
        "a class",
        {
            "course": ["organic chemistry", "calculus", "physics", "accounting"],
            "grade": ["52", "48", "55", "58"],
            "days": ["three", "five", "six"],
            "year": ["sophomore", "junior"],
        },
    ),
    scenario(
        "college",
        ["My dorm {who}'s partner basically lives in our room", "Roommate's partner sleeps over {n_times} nights a week"],
        "I ({age}{g}) share a small dorm room with my {who} ({o_age}{o_g}).",
        "For {duration}, {o_poss} partner has slept over {n_times} nights a week. I have no privacy, and I've been studying in the library until it closes.",
        [
            "I brought it up, and {o_subj} said it was only temporary.",
            "I checked the housing rules, and guests are limited to two nights a week.",
        ],
        ["How do I talk to {o_obj}, or should I go to the RA?", "Should I handle it myself or involve the RA?"],
        "{poss} {who}'s partner has stayed over {n_times} nights a week for {duration}",
        "whether to involve the RA",
        "a dorm",
        {"who": [("roommate", "?")], "n_times": TIMES, "duration": ["a month", "six weeks", "two months"]},
    ),
    scenario(
        "college",
        ["GPA dropped and I might lose a {amount} scholarship", "Scholarship appeal after a bad semester, any tips?"],
        "I ({age}{g}) had a rough semester after my {who} got sick, and I went home most weekends.",
        "My GPA fell to {gpa}, below the 3.0 my {amount} scholarship requires. The office says I can appeal within {days} days.",
        [
            "I asked one professor for a letter, and he agreed.",
            "I collected hospital dates to show why I was away, but I'm not sure it helps.",
        ],
        ["How do I write an appeal that keeps my scholarship?", "What should go into the appeal?"],
        "{poss} GPA fell to {gpa}, putting a {amount} scholarship at risk",
        "how to write a strong appeal",
        "a scholarship",
        {
            "who": [("mom", "F"), ("dad", "M"), ("grandmother", "F")],
            "gpa": ["2.6", "2.7", "2.8", "2.9"],
            "amount": ("money", 4000, 15000, 1000),
            "days": ["ten", "fourteen", "twenty"],
        },
    ),
    scenario(
        "college",
        ["Want to switch from {major1} to {major2} in my {year} year", "Parents pay tuition and don't know I want to switch majors"],
        "I ({age}{g}) am in my {year} year studying {major1}, which my parents chose for me.",
        "I have been secretly taking {major2} classes and love them. My parents pay most of my tuition and expect me to go into {major1} after graduation.",
        [
            "I talked to an adviser, and switching would add only one semester.",
            "I hinted at it on the phone once, and my dad changed the subject.",
        ],
        ["Should I tell my parents before switching?", "Do I tell them first or switch and then explain?"],
        "in {poss} {year} year, {subj} wants to switch from {major1} to {major2}",
        "whether to tell {poss} parents before switching",
        "a major",
        {
            "year": ["second", "third"],
            "major1": ["nursing", "engineering", "accounting", "pre-med"],
            "major2": ["graphic design", "history", "music", "psychology"],
        },
    ),
    scenario(
        "college",
        ["Professor says my {course} essay is plagiarized but it isn't", "Falsely accused of plagiarism, hearing in {days} days"],
        "I ({age}{g}) wrote my {course} essay over {duration}, all by myself.",
        "My professor says a detection tool flagged it and gave me a zero. There is a hearing in {days} days, and I could fail the course.",
        [
            "I still have my notes and earlier drafts, but I'm not sure they count.",
            "I emailed the professor, and she said to bring evidence to the hearing.",
        ],
        ["How can I prove it is my own work?", "What evidence should I bring to the hearing?"],
        "{poss} {course} essay was flagged as plagiarized, with a hearing in {days} days",
        "how to prove the essay is original",
        "a plagiarism case",
        {
            "course": ["philosophy", "sociology", "literature", "economics"],
            "duration": ["two weeks", "ten days", "three weeks"],
            "days": ["four", "six", "nine"],
        },
    ),
    # ---------------------------------------------------------------- landlord
    scenario(
        "landlord",
        ["Landlord kept my {amount} deposit, claims damage", "Moved out {duration} ago and still no deposit"],
        "I ({age}{g}) moved out of my apartment {duration} ago and left it spotless, with photos to prove it.",
        "My landlord kept my entire {amount} deposit, citing vague damage, without an itemized list. {O_subj} has ignored my last two emails.",
        [
            "I sent a polite letter asking for the itemized list.",
            "I checked my state's rules, and the deadline for returning deposits has passed.",
        ],
        ["How do I get my deposit back?", "What steps should I take to get the money back?"],
        "{poss} landlord kept {poss} full {amount} deposit with no itemized list",
        "how to get the deposit back",
        "a deposit",
        {"who": [("landlord", "?")], "amount": ("money", 800, 2500, 100), "duration": ["five weeks", "two months", "six weeks"]},
    ),
    scenario(
        "landlord",
        ["Heater broken for {duration}, landlord won't fix it", "No heat for {duration}, can I withhold rent?"],
        "I ({age}{g}) rent an older apartment, and the heater stopped working {duration} ago.",
        "It is below freezing at night, and I am using a space heater that spikes my power bill. My landlord keeps saying someone will come, but nobody does.",
        ["I have every request in writing, with dates.", "I called the city, and they told me to file a complaint online."],
        ["Can I legally withhold rent until it is fixed?", "Is withholding rent an option here?"],
        "{poss} landlord has ignored a broken heater for {duration} in freezing weather",
        "whether withholding rent is legal",
        "heating",
        {"who": [("landlord", "?")], "duration": ["two weeks", "three weeks", "a month"]},
    ),
    scenario(
        "landlord",
        ["Landlord raising rent by {amount} with {days} days notice", "Huge rent increase with almost no notice, is this legal?"],
        "I ({age}{g}) have rented the same apartment for {duration} and always paid on time.",
        "Yesterday my landlord told me rent goes up by {amount} a month, starting in {days} days. That is a huge jump for me, and I can't find anything cheaper nearby.",
        ["I asked to phase it in, and the landlord said no.", "I read my lease, but it says nothing about notice."],
        ["Is that amount of notice even legal?", "Can a landlord do this with so little notice?"],
        "{poss} landlord is raising rent {amount} a month on {days} days' notice",
        "whether that short notice is legal",
        "rent",
        {
            "who": [("landlord", "?")],
            "amount": ("money", 150, 500, 25),
            "days": ["ten", "fourteen", "twenty"],
            "duration": ["three years", "four years", "two years"],
        },
    ),
    scenario(
        "landlord",
        ["Landlord keeps entering my apartment without notice", "Came home to find my landlord inside, {n_times} times this month"],
        "I ({age}{g}) rent a unit in a house where my landlord lives upstairs.",
        "This month {o_subj} came into my apartment without notice {n_times} times, saying {o_subj} was checking the smoke alarm. Once I was in the shower.",
        ["I asked {o_obj} to text first, and {o_subj} said it was {o_poss} house.", "I put a note on the door, and {o_subj} ignored it."],
        ["How do I make this stop?", "What can I do to stop the surprise visits?"],
        "{poss} landlord entered {poss} apartment without notice {n_times} times this month",
        "how to make the visits stop",
        "privacy",
        {"who": [("landlord", "?")], "n_times": TIMES},
    ),
    scenario(
        "landlord",
        ["Roommate moving out early and leaving me with {o_poss} rent", "My {who} is breaking our lease with {duration} left"],
        "I ({age}{g}) signed a one-year lease with my {who} ({o_age}{o_g}), and we have {duration} left.",
        "{O_subj} just told me {o_subj} is moving in with a partner next week and won't pay {o_poss} {amount} share of the rent anymore. Both our names are on the lease.",
        [
            "I asked {o_obj} to find a replacement, and {o_subj} said that was my problem.",
            "I looked for a subletter, but the landlord must approve anyone new.",
        ],
        ["Should I sue or look for a replacement?", "What are my options here?"],
        "{poss} {who} is moving out with {duration} left and will stop paying {amount} rent",
        "whether to sue or find a replacement",
        "a lease",
        {
            "who": [("roommate", "?"), ("friend", "?")],
            "duration": ["five months", "seven months", "four months"],
            "amount": ("money", 500, 1200, 50),
        },
    ),
    scenario(
        "landlord",
        ["Landlord just paints over the mold in my bathroom", "Mold for {duration}, landlord won't fix it properly"],
        "I ({age}{g}) have asthma, and there is black mold spreading in my bathroom.",
        "It has been there for {duration}. My landlord sent someone who painted over it, and it was back within {days} days.",
        ["I bought a dehumidifier, and it only slowed things down.", "I sent photos with dates, and the landlord said to open a window."],
        ["How do I force a proper repair?", "Who can make my landlord fix the mold?"],
        "{poss} bathroom has had mold for {duration}, and the landlord only paints over it",
        "how to force a proper repair",
        "mold",
        {"duration": ["three months", "four months", "six months"], "days": ["ten", "twelve", "fifteen"]},
    ),
]

# Side remarks that appear in a post but do not matter for its summary.  The
# second and third forms let a rambling summary drag the detail in and let the
# feedback name it.
SIDE_NOTES = [
    ("I'm writing this at a laundromat while my towels dry, so it may be scattered.", "is at a laundromat", "the laundromat"),
    ("For context, I just got back from a hiking trip, which is why I put this off.", "just went hiking", "the hiking trip"),
    ("My cat has been sitting on my keyboard the whole time I've been typing.", "has a cat on the keyboard", "the cat on the keyboard"),
    ("Side note, I recently started baking bread, and it's my only stress relief.", "started baking bread", "baking bread"),
    ("I've also had a cold all week, so I'm not at my sharpest.", "has a cold", "the cold"),
    ("Of course, my car also got a flat tire on the same day.", "also got a flat tire", "the flat tire"),
    ("I'm typing this on my lunch break, so sorry for any typos.", "is on a lunch break", "the lunch break"),
    ("It's been raining for five straight days here, which isn't helping my mood.", "mentions the rain", "the rainy weather"),
    ("I've been binge-watching a cooking show to distract myself.", "watches a cooking show", "the cooking show"),
    ("My neighbor's dog has been barking nonstop while I write this.", "hears a dog barking", "the barking dog"),
]

INTROS = [
    "Long time lurker, first time posting.",
    "Throwaway account for obvious reasons.",
    "On mobile, sorry about the formatting.",
    "I need some outside perspective on this.",
    "Sorry in advance, this is a bit long.",
    "",
    "",
]
FILLERS = [
    "I really don't want to overreact here.",
    "I've gone back and forth on this for days.",
    "Everyone I ask in real life gives me a different answer.",
    "I'm honestly not sure if I'm the unreasonable one.",
    "This has been stressing me out more than I'd like to admit.",
    "I'd rather sort it out calmly if I can.",
    "I've tried to stay patient, but I'm running out of ideas.",
    "",
]
SIGNOFFS = [
    "Thanks in advance for any advice.",
    "Any input is appreciated.",
    "Thank you for reading this far.",
    "Edit: thanks for the replies so far.",
    "",
    "",
]

# Summary frames.  {gist} and {q} come from the scenario; frames stay one
# plain sentence ending in a period.
GOOD_FRAMES = [
    "The poster ({age}{g}) explains that {gist}, and asks {q}.",
    "{A_age} {age}-year-old {noun} says {gist}, and wants advice on {q}.",
    "{Subj} writes that {gist}, and {subj} is asking {q}.",
    "According to the {age}{g} poster, {gist}; {subj} wants to know {q}.",
]
TLDR_FRAMES = ["{Gist1}; trying to figure out {q1}.", "{Gist1}, and I don't know {q1}.", "{Gist1}, so I need advice on {q1}."]
OMIT_QUESTION_FRAMES = [
    "The poster explains that {gist}.",
    "{A_age} {age}-year-old {noun} writes that {gist}.",
    "In this post, {subj} says {gist}.",
]
OMIT_PROBLEM_FRAMES = [
    "The poster asks {q} and would like some advice from others.",
    "{A_age} {age}-year-old {noun} is asking {q} and wants input from readers.",
]
VAGUE_FRAMES = [
    "The poster is dealing with a tough situation involving {topic} and wants some advice.",
    "Someone has a problem with {topic} and asks what to do about it.",
    "{Subj} describes a complicated situation involving {topic} and is not sure what to do next.",
    "This post is about an issue with {topic}, and the poster would like opinions.",
    "The poster explains some trouble related to {topic} and asks Reddit for help.",
]
RAMBLING_FRAMES = [
    "The poster, who {irr}, basically says {gist}, so {subj} asks {q}.",
    "So {subj} {irr}, and also {gist}, and asks {q}.",
    "Basically the poster {irr}, and {gist}, and asks {q}.",
]

# Feedback phrasings, at least five per flaw; each names the concrete fix.
FEEDBACK = {
    "omit_question": [
        "The summary leaves out that {subj} is asking {q}; that is the main point.",
        "It misses the actual question: {subj} wants to know {q}.",
        "Good start, but it never mentions that the poster asks {q}, which is why {subj} posted.",
        "Missing the key part. The post is really about {q}, and the summary should say so.",
        "This drops the question at the end. Add that {subj} asks {q}.",
    ],
    "omit_problem": [
        "The summary skips the actual problem: {gist}.",
        "It only gives the question and leaves out that {gist}.",
        "Missing the context that {gist}; that is the heart of the post.",
        "A reader would not know that {gist}. The summary should state that first.",
        "It never says what happened, namely that {gist}.",
    ],
    "wrong": [
        "The summary gets the {label} wrong: the post says {correct}, not {wrong}.",
        "Factual error. It was {correct}, not {wrong}; otherwise the summary is fine.",
        "It says {wrong}, but the post clearly says {correct}. Please fix that detail.",
        "Inaccurate: the {label} in the post is {correct}, while the summary claims {wrong}.",
        "Mostly right, but {wrong} is wrong; the post mentions {correct}.",
    ],
    "vague": [
        "Too vague. It should say that {gist} and that {subj} asks {q}.",
        "This could describe almost any post. Mention that {gist}.",
        "Generic and uninformative; a good summary would note that {gist}.",
        "It does not tell me anything specific. The key facts are that {gist} and the question of {q}.",
        "Way too general: name the real issue, which is that {gist}.",
    ],
    "rambling": [
        "Too long and rambling; {irr_np} has nothing to do with it. Just say that {gist}.",
        "Cut the part about {irr_np}. The summary only needs that {gist} and the question of {q}.",
        "Rambles. Nobody needs to know about {irr_np}; focus on {q}.",
        "The irrelevant detail about {irr_np} makes this hard to read. Keep it to {q}.",
        "Way too wordy. Drop {irr_np} and say plainly that {subj} asks {q}.",
    ],
}
FLAW_CLASS = {"omit": "coverage", "vague": "coverage", "wrong": "accuracy", "rambling": "coherence"}
UNITS = {"n_times": " times", "days": " days", "hours": " hours", "n": " coworkers", "guests": " guests"}
LABELS = {
    "amount": "amount",
    "duration": "time frame",
    "who": "person involved",
    "place": "city",
    "n_times": "number of times",
    "days": "number of days",
    "hours": "number of hours",
}

# Word-count bounds from the data spec; rows outside them are redrawn.
BOUNDS = {
    "title": (5, 14),
    "post": (60, 160),
    "generated_summary_for_feedback": (10, 30),
    "feedback": (8, 35),
    "ideal_human_summary": (12, 35),
    "tldr_human_reference_summary": (10, 30),
    "generated_summary_for_comparison_A": (10, 35),
    "generated_summary_for_comparison_B": (10, 35),
}


def cap(text):
    return text[:1].upper() + text[1:]


def draw_slot(rng, spec):
    """Draw one slot value from a spec (see the comment above SCENARIOS)."""
    if isinstance(spec, tuple) and spec[0] == "money":
        _, lo, hi, step = spec
        return f"${rng.randrange(lo, hi + 1, step):,}"
    return rng.choice(spec)


def draw_who(rng, options):
    noun, gender = rng.choice(options)
    return noun, gender if gender != "?" else rng.choice("FM")


def draw_slots(rng, scen):
    """Fill every slot of a scenario plus the narrator and other-person forms."""
    g = rng.choice("FM")
    age = rng.randint(18, 23) if scen["sub"] == "college" else rng.randint(19, 46)
    slots = {
        "age": age,
        "g": g,
        "o_age": max(18, age + rng.randint(-4, 5)),
        "A_age": "An" if age in (8, 11, 18) or str(age).startswith("8") else "A",
    }
    for key, spec in scen["slots"].items():
        if key == "who":
            slots["who"], slots["o_g"] = draw_who(rng, spec)
        else:
            slots[key] = draw_slot(rng, spec)
    slots.setdefault("o_g", rng.choice("FM"))
    slots.update(OTHER_PERSON[slots["o_g"]])
    return slots


def wrong_value(rng, scen, key, slots):
    """A plausible but incorrect value for one slot (same gender for people)."""
    spec = scen["slots"][key]
    if key == "who":
        options = [n for n, gen in spec if n != slots["who"] and gen in ("?", slots["o_g"])]
        return rng.choice(options) if options else None
    for _ in range(20):
        value = draw_slot(rng, spec)
        if value != slots[key]:
            return value
    return None


def render(template, slots, person):
    """Fill a summary template for the poster in the 3rd ("3") or 1st ("1") person."""
    forms = dict(THIRD_PERSON[slots["g"]]) if person == "3" else dict(FIRST_PERSON)
    return template.format_map({**slots, **forms, "Subj": cap(forms["subj"])})


def build_post(rng, scen, slots, side):
    """Assemble a first-person post; the irrelevant side note lands at a random spot."""
    body = [scen["background"], scen["problem"], rng.choice(FILLERS), rng.choice(scen["tried"])]
    body.insert(rng.randint(1, len(body)), side[0])
    body += [rng.choice(scen["ask"]), rng.choice(SIGNOFFS)]
    first = [rng.choice(INTROS)] + body[:2]
    text = " ".join(s for s in first if s) + "\n\n" + " ".join(s for s in body[2:] if s)
    return text.format_map(slots)


def good_summary(rng, facts):
    return cap(rng.choice(GOOD_FRAMES).format_map(facts))


def flawed_summary(rng, scen, slots, facts, flaw):
    """Return (summary, feedback) for one deliberate flaw."""
    if flaw == "omit":
        kind = rng.choice(["omit_question", "omit_question", "omit_problem"])
        frames = OMIT_QUESTION_FRAMES if kind == "omit_question" else OMIT_PROBLEM_FRAMES
        return cap(rng.choice(frames).format_map(facts)), rng.choice(FEEDBACK[kind]).format_map(facts)
    if flaw == "wrong":
        # Only slots that appear in the gist and have an alternative value.
        keys = [k for k, spec in scen["slots"].items() if "{" + k + "}" in scen["gist"] and (isinstance(spec, tuple) or len(spec) > 1)]
        key = rng.choice(keys)
        bad = wrong_value(rng, scen, key, slots)
        if bad is None:
            return None, None
        gist = render(scen["gist"], {**slots, key: bad}, "3")
        summary = cap(rng.choice(GOOD_FRAMES).format_map({**facts, "gist": gist}))
        # Show the detail as it reads in the summary ("her sister", "four times").
        prefix = facts["poss"] + " " if key == "who" else ""
        show = lambda v: prefix + v + UNITS.get(key, "")
        info = {"label": LABELS.get(key, key.replace("_", " ")), "correct": show(slots[key]), "wrong": show(bad)}
        return summary, rng.choice(FEEDBACK["wrong"]).format_map(info)
    if flaw == "vague":
        return cap(rng.choice(VAGUE_FRAMES).format_map(facts)), rng.choice(FEEDBACK["vague"]).format_map(facts)
    summary = cap(rng.choice(RAMBLING_FRAMES).format_map(facts))
    return summary, rng.choice(FEEDBACK["rambling"]).format_map(facts)


def words(text):
    return len(text.split())


def make_row(rng, row_id, scen, flaw):
    """One SLF5K-style row with the given flaw, or None if a bound failed (caller redraws)."""
    slots = draw_slots(rng, scen)
    side = rng.choice(SIDE_NOTES)
    title = cap(rng.choice(scen["titles"]).format_map(slots))
    post = build_post(rng, scen, slots, side)
    third = THIRD_PERSON[slots["g"]]
    facts = {
        **slots,
        **third,
        "Subj": cap(third["subj"]),
        "topic": scen["topic"],
        "gist": render(scen["gist"], slots, "3"),
        "q": render(scen["q"], slots, "3"),
        "irr": side[1],
        "irr_np": side[2],
    }
    facts["Gist1"] = cap(render(scen["gist"], slots, "1"))
    facts["q1"] = render(scen["q"], slots, "1")

    summary, feedback = flawed_summary(rng, scen, slots, facts, flaw)
    if summary is None:
        return None
    ideal = good_summary(rng, facts)
    tldr = cap(rng.choice(TLDR_FRAMES).format_map(facts))

    # Comparison pair: one good summary against one with a fresh random flaw.
    better = good_summary(rng, facts)
    worse, _ = flawed_summary(rng, scen, slots, facts, rng.choice(["omit", "wrong", "vague", "rambling"]))
    if worse is None or worse == better:
        return None
    good_first = rng.random() < 0.5
    comp_a, comp_b = (better, worse) if good_first else (worse, better)

    row = {
        "id": row_id,
        "subreddit": scen["sub"],
        "title": title,
        "post": post,
        "summary_prompt": f"Title: {title}\n\nText: {post}\n\nTL;DR:",
        "generated_summary_for_feedback": summary,
        "feedback": feedback,
        "feedback_class": FLAW_CLASS[flaw],
        "ideal_human_summary": ideal,
        "tldr_human_reference_summary": tldr,
        "generated_summary_for_comparison_A": comp_a,
        "generated_summary_for_comparison_B": comp_b,
        "comparison_preference": "Summary A" if good_first else "Summary B",
        "time_spent_in_seconds_feedback": rng.randint(60, 400),
        "time_spent_in_seconds_ideal_human_summary": rng.randint(60, 400),
        "time_spent_in_seconds_comparison": rng.randint(10, 120),
    }
    for field, (lo, hi) in BOUNDS.items():
        if not lo <= words(row[field]) <= hi:
            return None
    if summary == ideal or "\n" in summary + ideal + tldr:
        return None
    return row


def make_split(rng, split, count, seen_posts):
    """Rows for one split, cycling through shuffled scenarios and flaws for balance."""
    rows, order, flaws = [], [], []
    while len(rows) < count:
        if not order:
            order = list(range(len(SCENARIOS)))
            rng.shuffle(order)
        if not flaws:
            flaws = ["omit", "wrong", "vague", "rambling"]
            rng.shuffle(flaws)
        scen, flaw = SCENARIOS[order.pop()], flaws.pop()
        row_id = f"offline-{split}-{len(rows) + 1:04d}"
        # Redraw slots until the row meets every bound.  Rambling summaries
        # only fit in 30 words with short slot values, so after many misses
        # fall back to another flaw rather than give up on the scenario.
        for attempt in range(400):
            if attempt >= 200:
                flaw = rng.choice(["omit", "wrong", "vague"])
            row = make_row(rng, row_id, scen, flaw)
            if row is not None and row["post"] not in seen_posts:
                break
        else:
            raise RuntimeError("could not fill scenario: " + scen["titles"][0])
        seen_posts.add(row["post"])
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("data", "offline"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    seen_posts = set()
    for split, count in SPLITS:
        rows = make_split(rng, split, count, seen_posts)
        path = os.path.join(args.out, split + ".jsonl")
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
