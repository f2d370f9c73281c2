/*
 * The Stroop (colour-word) task.
 *
 * Flow: 4 instruction pages -> 8 practice words with feedback -> 24 test words ->
 * questionnaire -> save, bonus, completeHIT().
 *
 * exp.html defines uniqueId, condition, counterbalance, adServerLoc, mode, codeversion
 * and contact_address before this file runs, and loads jQuery, underscore, Backbone and
 * psiturk.js.
 *
 * Driving it from a browser test (e.g. Playwright). There is no test mode: a test does
 * what a participant does, and every step answers at once.
 *   1. Instructions: click #next four times (#prev goes back a page).
 *   2. Practice, 8 trials: for each, wait for #stim[data-state="stimulus"], then press
 *      r, g, b or y. The ink colour is #stim's data-ink attribute (red, green, blue,
 *      yellow), so a test can answer right or wrong on purpose. The trial is scored
 *      at the key press.
 *   3. Click #start-test, then 24 test trials exactly as in step 2.
 *   4. Questionnaire: optionally choose #engagement and #difficulty, a colourvision
 *      radio button and type in #strategy; click #submit-questionnaire. The page saves,
 *      calls /compute_bonus and goes to adServerLoc (/complete).
 */

var psiTurk = new PsiTurk(uniqueId, adServerLoc, mode);

var INSTRUCTION_PAGES = [
  "instructions/instruct-1.html",
  "instructions/instruct-2.html",
  "instructions/instruct-3.html",
  "instructions/instruct-ready.html"
];

// Start fetching every page now, while the browser is still loading the rest.
var pagesLoaded = psiTurk.preloadPages(
  INSTRUCTION_PAGES.concat(["stage.html", "postquestionnaire.html"]));

var Stroop = (function () {
  var COLOURS = ["red", "green", "blue", "yellow"];
  var KEY_TO_COLOUR = { r: "red", g: "green", b: "blue", y: "yellow" };
  var PRACTICE_TRIALS = 8;
  var TEST_TRIALS = 24;
  var FIXATION_MS = 500;     // the + before each word
  var FEEDBACK_MS = 800;     // practice only
  var GAP_MS = 250;          // blank screen between test words

  // The conditions differ in how many test words match their ink (condition 0: half,
  // condition 1: a quarter). Fewer matches usually make mismatches easier, which is
  // the effect this example measures.
  var CONGRUENT_SHARE = [0.5, 0.25];

  function congruentShare() {
    return CONGRUENT_SHARE[condition] === undefined ? CONGRUENT_SHARE[0] : CONGRUENT_SHARE[condition];
  }

  // A shuffled list of trials: some words in their own colour, the rest cycling
  // through every word/ink mismatch so each is used about equally often.
  function makeTrials(count, share) {
    var trials = [];
    var congruent = Math.round(count * share);
    var colours = _.shuffle(COLOURS);
    var mismatches = [];
    var i;

    for (i = 0; i < congruent; i += 1) {
      var colour = colours[i % colours.length];
      trials.push({ word: colour.toUpperCase(), color: colour, relation: "congruent" });
    }
    _.each(COLOURS, function (word) {
      _.each(COLOURS, function (ink) {
        if (word !== ink) {
          mismatches.push({ word: word.toUpperCase(), color: ink, relation: "incongruent" });
        }
      });
    });
    mismatches = _.shuffle(mismatches);
    for (i = 0; i < count - congruent; i += 1) {
      trials.push(_.clone(mismatches[i % mismatches.length]));
    }
    return _.shuffle(trials);
  }

  // Runs one block of trials on the stage page, then calls done(results).
  function runBlock(block, done) {
    var $stim = $("#stim");
    var $feedback = $("#feedback");
    var results = [];
    var index = 0;
    var trial = null;
    var onset = 0;
    var listening = false;

    // The bar shows the trials answered, the counter the trial on screen, so the bar
    // reaches 100% once the last word is answered (it stopped at 7/8 = 88% before).
    function showProgress() {
      var percent = Math.round(100 * index / block.trials.length);
      $("#progress").attr("aria-valuenow", percent);
      $("#progress-bar").css("width", percent + "%");
    }

    function showCount() {
      $("#trial-count").text(Math.min(index + 1, block.trials.length) + " / " + block.trials.length);
    }

    function clearStim(state) {
      $stim.text("").attr({ "class": "stim", "data-state": state }).removeAttr("data-ink");
    }

    function next() {
      if (index >= block.trials.length) {
        $(document).off("keydown.stroop");
        clearStim("idle");
        $feedback.text("").removeClass("is-correct is-wrong");
        done(results);
        return;
      }
      trial = block.trials[index];
      showProgress();
      showCount();
      $feedback.text("").removeClass("is-correct is-wrong");
      $stim.text("+").attr({ "class": "stim fixation", "data-state": "fixation" }).removeAttr("data-ink");
      setTimeout(showWord, FIXATION_MS);
    }

    function showWord() {
      $stim.text(trial.word).attr({ "class": "stim ink ink-" + trial.color, "data-ink": trial.color });
      // Time from the frame the word is painted in, not from when it was queued.
      window.requestAnimationFrame(function () {
        onset = window.performance.now();
        listening = true;
        $stim.attr("data-state", "stimulus");
      });
    }

    function onKey(event) {
      var original = event.originalEvent || event;
      if (!listening || original.repeat || event.ctrlKey || event.metaKey || event.altKey) {
        return;
      }
      var key = String(original.key || String.fromCharCode(event.which)).toLowerCase();
      var response = KEY_TO_COLOUR[key];
      if (!response) {
        return;
      }
      event.preventDefault();
      listening = false;

      var rt = Math.round(window.performance.now() - onset);
      var correct = response === trial.color;
      var record = {
        phase: block.phase,
        block: block.name,
        trial: index + 1,
        word: trial.word,
        color: trial.color,
        relation: trial.relation,
        key: key,
        response: response,
        hit: correct,
        correct: correct,
        rt: rt
      };
      psiTurk.recordTrialData(record);
      results.push(record);
      index += 1;
      showProgress();

      if (block.feedback) {
        $stim.attr("data-state", "feedback");
        $feedback
          .addClass(correct ? "is-correct" : "is-wrong")
          .text(correct ? "Correct!" : "Not quite: the ink was " + trial.color + ".");
        setTimeout(next, FEEDBACK_MS);
      } else {
        clearStim("gap");
        setTimeout(next, GAP_MS);
      }
    }

    $("#block-label").text(block.label);
    $(document).on("keydown.stroop", onKey);
    next();
  }

  function countCorrect(results) {
    return _.filter(results, function (r) { return r.hit; }).length;
  }

  function start() {
    psiTurk.showPage("stage.html");
    var practice = {
      name: "practice", phase: "PRACTICE", label: "Practice", feedback: true,
      trials: makeTrials(PRACTICE_TRIALS, 0.5)
    };
    var test = {
      name: "test", phase: "TEST", label: "Test", feedback: false,
      trials: makeTrials(TEST_TRIALS, congruentShare())
    };

    runBlock(practice, function (results) {
      psiTurk.saveData();   // a checkpoint; the final save comes after the questionnaire
      $("#practice-score").text("You got " + countCorrect(results) + " of " +
        results.length + " practice words right.");
      $("#block-break").prop("hidden", false);
      $("#start-test").trigger("focus").one("click", function () {
        $("#block-break").prop("hidden", true);
        $(this).trigger("blur");
        runBlock(test, function (testResults) {
          psiTurk.saveData();
          Questionnaire.show(countCorrect(testResults), testResults.length);
        });
      });
    });
  }

  return { start: start, makeTrials: makeTrials };
}());

var Questionnaire = (function () {
  var FIELDS = ["engagement", "difficulty", "colourvision", "strategy"];

  function recordAnswers() {
    psiTurk.recordTrialData({ phase: "postquestionnaire", status: "submit" });
    _.each(FIELDS, function (name) {
      var $field = $("#questionnaire [name='" + name + "']");
      var value = $field.is(":radio") ? ($field.filter(":checked").val() || "") : $field.val();
      psiTurk.recordUnstructuredData(name, value);
    });
  }

  function finish() {
    $("#save-failed").prop("hidden", true);
    $("#saving").prop("hidden", false);
    psiTurk.saveData({
      success: function () {
        // The bonus is computed by the server (custom.py) from the saved data. If that
        // fails the lab can still compute it later, so finish either way.
        psiTurk.computeBonus("compute_bonus", psiTurk.completeHIT, psiTurk.completeHIT);
      },
      error: function () {
        $("#saving").prop("hidden", true);
        $("#save-failed").prop("hidden", false);
        $("#resubmit").trigger("focus");
      }
    });
  }

  function show(correct, total) {
    psiTurk.showPage("postquestionnaire.html");
    psiTurk.recordTrialData({ phase: "postquestionnaire", status: "begin" });
    $("#test-score").text("You answered " + correct + " of " + total + " test words correctly.");
    $("#questionnaire").on("submit", function (event) {
      event.preventDefault();
      $("#submit-questionnaire").prop("disabled", true);
      recordAnswers();
      finish();
    });
    $("#resubmit").on("click", finish);
  }

  return { show: show };
}());

$(window).on("load", function () {
  pagesLoaded.then(function () {
    psiTurk.doInstructions(INSTRUCTION_PAGES, Stroop.start);
  }, function () {
    $("#loading").html(
      "<div class='alert alert-danger'><h1 class='h4'>The study could not load</h1>" +
      "<p class='mb-0'>Please check your internet connection and reload this page.</p></div>");
  });
});
